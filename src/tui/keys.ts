/**
 * What every key does, as a pure function of the UI state: `handleKey` returns the next state and,
 * for actions, an effect the app performs (an API call, quitting). Testable without Ink.
 */
import type { Key } from 'ink'
import { JOB_STATES, type PeerView, type SubmitRequest } from '../types.js'
import { edit, FORM_FIELDS, formRequest, newForm, type FormState } from './form.js'
import { shortPeer } from './format.js'
import { locate, nextState, NO_FILTER, scrollTop, type JobFilter, type JobRow } from './store.js'

export type View = 'jobs' | 'detail' | 'peers' | 'help'

export type Effect =
  | { type: 'quit' }
  | { type: 'kill' | 'retry', job: JobRow }
  | { type: 'drain', peer: PeerView }
  | { type: 'pause' | 'resume', group: string }
  | { type: 'submit', request: SubmitRequest }
  | { type: 'say', text: string }

export interface UiState {
  view: View
  /** The view the help returns to. */
  back: Exclude<View, 'help'>
  filter: JobFilter
  /** The selected job; undefined: the newest one, following new jobs as they come. */
  selected?: JobRow
  /** The first row the jobs table shows. */
  top: number
  /** The selected row of the peers view. */
  peer: number
  /** The job the detail view shows. */
  detail?: JobRow
  /** Which output the detail view tails. */
  stream: 'stdout' | 'stderr'
  /** A filter being typed in the status line. */
  prompt?: 'text' | 'group'
  form?: FormState
  confirm?: { question: string, effect: Effect }
}

/** Every key, for the help view. */
export const HELP: ReadonlyArray<readonly [string, string]> = [
  ['↑ ↓', 'move'],
  ['PgUp PgDn', 'move a page'],
  ['Home', 'newest job, following new'],
  ['End', 'oldest job'],
  ['Enter', 'job details'],
  ['Esc', 'back; jobs: clear filters'],
  ['/', 'filter by text'],
  ['g', 'filter by group'],
  ['1 … 6', 'pending ready running done'],
  ['', '  failed killed only'],
  ['0', 'clear the state filter'],
  ['f', 'cycle the state filter'],
  ['Tab', 'jobs ⇄ peers'],
  ['s', 'submit a job'],
  ['k', 'kill the job (y/n)'],
  ['r', 'retry the job'],
  ['p', "pause/resume the job's group"],
  ['d', 'drain the peer (peers, y/n)'],
  ['e', 'details: stdout ⇄ stderr'],
  ['?', 'this help'],
  ['q Ctrl-C', 'quit'],
  ['Tab ↑ ↓', 'form: next/previous field'],
  ['Enter Esc', 'form: submit, cancel'],
  ['Ctrl-U', 'form, filter: clear']
]

export const INITIAL_UI: UiState = { view: 'jobs', back: 'jobs', filter: NO_FILTER, top: 0, peer: 0, stream: 'stdout' }

/** What keys act on, besides the state. */
export interface KeyContext {
  /** The jobs table's rows: the filtered jobs, newest first. */
  jobs: readonly JobRow[]
  /** The peers view's rows. */
  peers: readonly PeerView[]
  /** Rows per page of the jobs table. */
  page: number
  /** Whether a group is paused (as far as the app knows). */
  paused: (group: string) => boolean
}

export interface Outcome {
  state: UiState
  effect?: Effect
}

const QUIT: Effect = { type: 'quit' }
const say = (state: UiState, text: string): Outcome => ({ state, effect: { type: 'say', text } })
const clamp = (n: number, min: number, max: number): number => Math.max(min, Math.min(n, max))

/**
 * Ink hands over a burst of plain text (typed fast, pasted, or sent by tmux) as one input:
 * this splits it into one key press per character, Enter and Tab included.
 */
export function keyPresses (input: string, key: Key): Array<[string, Key]> {
  const chars = [...input]
  if (chars.length <= 1) return [[input, key]]
  return chars.map(c => c === '\r' || c === '\n' ? ['', { ...key, return: true }] : c === '\t' ? ['', { ...key, tab: true }] : [c, key])
}

export function handleKey (state: UiState, input: string, key: Key, ctx: KeyContext): Outcome {
  if (key.ctrl && input === 'c') return { state, effect: QUIT }
  if (state.confirm !== undefined) {
    const next = { ...state, confirm: undefined }
    return input === 'y' || input === 'Y' ? { state: next, effect: state.confirm.effect } : { state: next }
  }
  if (state.form !== undefined) return formKey(state, state.form, input, key)
  if (state.prompt !== undefined) return { state: promptKey(state, state.prompt, input, key) }
  if (input === 'q') return { state, effect: QUIT }
  if (input === '?') return { state: state.view === 'help' ? { ...state, view: state.back } : { ...state, view: 'help', back: state.view } }
  if (state.view === 'help') return { state: key.escape ? { ...state, view: state.back } : state }
  if (key.tab) return { state: { ...state, view: state.view === 'peers' ? 'jobs' : 'peers' } }
  return VIEW_KEYS[state.view](state, input, key, ctx)
}

type ViewKeys = (state: UiState, input: string, key: Key, ctx: KeyContext) => Outcome

const VIEW_KEYS: Record<Exclude<View, 'help'>, ViewKeys> = {
  jobs (state, input, key, ctx) {
    const delta = movement(key, ctx.page)
    if (delta !== undefined) return { state: move(state, ctx, delta) }
    const job = ctx.jobs[selectedIndex(state, ctx.jobs)]
    if (key.return) return job === undefined ? { state } : { state: { ...state, view: 'detail', detail: job } }
    if (key.escape) return { state: withFilter(state, { text: '', state: undefined, group: undefined }) }
    if (input === '/') return { state: { ...state, prompt: 'text' } }
    if (input === 'g') return { state: { ...state, prompt: 'group' } }
    if (input === 's') return { state: { ...state, form: newForm() } }
    if (/^[1-6]$/.test(input)) {
      const wanted = JOB_STATES[Number(input) - 1]
      return { state: withFilter(state, { state: state.filter.state === wanted ? undefined : wanted }) }
    }
    if (input === '0') return { state: withFilter(state, { state: undefined }) }
    if (input === 'f') return { state: withFilter(state, { state: nextState(state.filter.state) }) }
    if (input === 'd') return say(state, 'd drains a peer: Tab to the peers view')
    return jobAction(state, input, job, ctx)
  },
  detail (state, input, key, ctx) {
    if (key.escape || key.backspace || key.leftArrow) return { state: { ...state, view: 'jobs' } }
    if (input === 'e') return { state: { ...state, stream: state.stream === 'stdout' ? 'stderr' : 'stdout' } }
    return jobAction(state, input, state.detail, ctx)
  },
  peers (state, input, key, ctx) {
    if (key.escape) return { state: { ...state, view: 'jobs' } }
    const delta = key.upArrow ? -1 : key.downArrow ? 1 : 0
    const index = clamp(state.peer + delta, 0, ctx.peers.length - 1)
    if (delta !== 0) return { state: { ...state, peer: index } }
    if (input !== 'd') return { state }
    const peer = ctx.peers[index]
    if (peer === undefined) return say(state, 'no peer selected')
    const who = peer.self ? 'this node' : `node ${shortPeer(peer.id)}`
    const question = `drain ${who}? It finishes its running jobs, starts no more, then exits.`
    return { state: { ...state, confirm: { question, effect: { type: 'drain', peer } } } }
  }
}

/** k, r, p on a job (the selected one, or the one in the detail view). */
function jobAction (state: UiState, input: string, job: JobRow | undefined, ctx: KeyContext): Outcome {
  if (input === '' || !'krp'.includes(input)) return { state }
  if (job === undefined) return say(state, 'no job selected')
  if (input === 'k') {
    const question = `kill ${job.id} (${job.label})?`
    return { state: { ...state, confirm: { question, effect: { type: 'kill', job } } } }
  }
  if (input === 'r') return { state, effect: { type: 'retry', job } }
  if (job.group === undefined) return say(state, `${job.id} is in no group: nothing to pause`)
  return { state, effect: { type: ctx.paused(job.group) ? 'resume' : 'pause', group: job.group } }
}

function formKey (state: UiState, form: FormState, input: string, key: Key): Outcome {
  if (key.escape) return { state: { ...state, form: undefined } }
  if (key.return) {
    try {
      return { state: { ...state, form: undefined }, effect: { type: 'submit', request: formRequest(form.values) } }
    } catch (err) {
      return { state: { ...state, form: { ...form, error: (err as Error).message } } }
    }
  }
  const step = key.tab ? (key.shift ? -1 : 1) : key.downArrow ? 1 : key.upArrow ? -1 : 0
  if (step !== 0) return { state: { ...state, form: { ...form, focus: (form.focus + step + FORM_FIELDS.length) % FORM_FIELDS.length } } }
  const values = form.values.with(form.focus, edit(form.values[form.focus], input, key))
  return { state: { ...state, form: { ...form, values, error: undefined } } }
}

/** Typing a filter: it applies as it is typed; Enter keeps it, Esc drops it. */
function promptKey (state: UiState, prompt: 'text' | 'group', input: string, key: Key): UiState {
  const done = { ...state, prompt: undefined }
  if (key.return) return done
  if (prompt === 'text') return withFilter(key.escape ? done : state, { text: key.escape ? '' : edit(state.filter.text, input, key) })
  return withFilter(key.escape ? done : state, { group: key.escape ? undefined : edit(state.filter.group ?? '', input, key) || undefined })
}

/** A changed filter starts again at the newest job. */
function withFilter (state: UiState, change: Partial<JobFilter>): UiState {
  return { ...state, filter: { ...state.filter, ...change }, selected: undefined, top: 0 }
}

function movement (key: Key, page: number): number | undefined {
  if (key.upArrow) return -1
  if (key.downArrow) return 1
  if (key.pageUp) return -page
  if (key.pageDown) return page
  if (key.home) return -Infinity
  if (key.end) return Infinity
  return undefined
}

function move (state: UiState, ctx: KeyContext, delta: number): UiState {
  if (ctx.jobs.length === 0) return state
  const index = clamp(selectedIndex(state, ctx.jobs) + delta, 0, ctx.jobs.length - 1)
  // Moving up to the first row follows the newest jobs again.
  const selected = index === 0 && delta < 0 ? undefined : ctx.jobs[index]
  return { ...state, selected, top: scrollTop(state.top, index, ctx.page, ctx.jobs.length) }
}

/** The selected row: the selected job's row, or where it was if it is gone (filtered out, removed). */
export function selectedIndex (state: UiState, jobs: readonly JobRow[]): number {
  if (state.selected === undefined || jobs.length === 0) return 0
  return Math.min(locate(jobs, state.selected).index, jobs.length - 1)
}
