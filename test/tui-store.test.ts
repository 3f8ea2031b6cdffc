/** The dashboard's pure parts: the jobs store, the key handling, the submit form, the text. */
import { describe, expect, it } from 'vitest'
import { waitFor } from './helpers.js'
import type { Key } from 'ink'
import type { JobId, JobView, NodeEvent } from '../src/types.js'
import { formRequest, splitCommand } from '../src/tui/form.js'
import { fit, layout, JOB_COLUMNS, sparkline } from '../src/tui/format.js'
import { handleKey, INITIAL_UI, keyPresses, selectedIndex, type KeyContext, type UiState } from '../src/tui/keys.js'
import { NodeClient } from '../src/api/node-client.js'
import { ArrayItems, followJobs, LineTail } from '../src/tui/live.js'
import { JobsStore, LABEL_MAX, locate, nextState, NO_FILTER, scrollTop, toRow, type JobRow } from '../src/tui/store.js'
import { job, PEERS, running, SELF } from './tui-fixtures.js'

const ids = (jobs: readonly JobRow[]): string[] => jobs.map(j => j.id)
const rows = (jobs: JobView[]): JobRow[] => jobs.map(toRow)

describe('jobs store', () => {
  it('lists newest first, numbers in ids compared as numbers', () => {
    const store = new JobsStore()
    const same = job(5).submittedAt
    store.load(rows([job(1), job(9, { submittedAt: same }), job(10, { submittedAt: same }), job(3)]))
    expect(ids(store.list(NO_FILTER))).toEqual(['seg-10', 'seg-9', 'seg-3', 'seg-1'])
  })

  it('applies job and removed events in place, and ignores other events', () => {
    const store = new JobsStore()
    store.load(rows([job(1), job(2), job(3)]))
    const before = store.version
    store.apply({ type: 'job', job: running(2) })
    store.apply({ type: 'job', job: job(4, { state: 'pending' }) })
    store.apply({ type: 'removed', id: 'seg-1' as JobId })
    store.apply({ type: 'removed', id: 'nope' as JobId })
    store.apply({ type: 'node', status: {} } as unknown as NodeEvent)
    expect(store.version).toBe(before + 3)
    expect(ids(store.list(NO_FILTER))).toEqual(['seg-4', 'seg-3', 'seg-2'])
    expect(store.get('seg-2')?.state).toBe('running')
    expect(store.get('seg-1')).toBeUndefined()
    expect(store.size).toBe(3)
  })

  it('shows an array as one row: events about its tasks are left out, the array\'s own events update its counts', () => {
    const store = new JobsStore()
    const states = { pending: 0, ready: 1, running: 1, done: 1, failed: 0, killed: 0 }
    const array = job(7, { state: 'running', array: { first: 1, last: 3, step: 1, tasks: 3, states } })
    store.load(rows([job(1), array]))
    store.apply({ type: 'job', job: running(8, { id: 'seg-7[2]' as JobId, arrayId: 'seg-7' as JobId, arrayIndex: 2 }) })
    expect(ids(store.list(NO_FILTER))).toEqual(['seg-7', 'seg-1'])
    store.apply({ type: 'job', job: { ...array, array: { ...array.array!, states: { ...states, running: 0, done: 2 } } } })
    expect(store.get('seg-7')?.exit).toBe('2/3 done')
  })

  it('filters by text (id, command, group, node; any case), state and group', () => {
    const store = new JobsStore()
    store.load(rows([
      job(1, { cmd: ['make', 'ALL'], group: 'build' }),
      running(2, { group: 'build' }),
      job(3, { state: 'failed', group: 'test', name: 'unit tests', cmd: ['./run', '--suite=unit'], tags: ['gpu', 'slow'] })
    ]))
    expect(ids(store.list({ text: 'all' }))).toEqual(['seg-1'])
    expect(ids(store.list({ text: 'SEG-3' }))).toEqual(['seg-3'])
    expect(ids(store.list({ text: 'unit tests' }))).toEqual(['seg-3'])
    expect(ids(store.list({ text: 'suite=UNIT' }))).toEqual(['seg-3'])
    expect(ids(store.list({ text: 'slow' }))).toEqual(['seg-3'])
    expect(ids(store.list({ text: 'selfaa' }))).toEqual(['seg-2'])
    expect(ids(store.list({ text: '', state: 'running' }))).toEqual(['seg-2'])
    expect(ids(store.list({ text: '', group: 'build' }))).toEqual(['seg-2', 'seg-1'])
    expect(ids(store.list({ text: 'job', group: 'build', state: 'done' }))).toEqual([])
  })

  it('keeps a compact row of each job: the label cut, the exit, whether its group is paused', () => {
    const long = toRow(job(1, { cmd: ['sh', '-c', 'x'.repeat(500)], group: 'g', state: 'pending', reason: 'group g paused' }))
    expect(long.label).toHaveLength(LABEL_MAX)
    expect(long.label.endsWith('x…')).toBe(true)
    expect(long.groupPaused).toBe(true)
    expect(toRow(job(2, { group: 'g', state: 'pending', reason: 'group other paused' })).groupPaused).toBe(false)
    const killed = toRow(running(3, { state: 'killed', attempts: [{ epoch: 1, node: SELF, claimedAt: job(3).submittedAt, signal: 'SIGKILL' }] }))
    expect(killed).toMatchObject({ state: 'killed', exit: 'KILL', tries: 1, node: SELF, submittedAt: Date.parse(job(3).submittedAt) })
    expect(toRow(job(4, { exitCode: 0, name: 'nightly' }))).toMatchObject({ exit: '0', label: 'nightly', command: "echo 'job 4'" })
    const store = new JobsStore()
    store.load(rows([job(1), job(2, { group: 'g', reason: 'group g paused' })]))
    expect(store.some(row => row.group === 'g' && row.groupPaused)).toBe(true)
  })

  it('locates a removed job where it was', () => {
    const list = rows([job(5), job(3), job(1)])
    expect(locate(list, toRow(job(3)))).toEqual({ index: 1, found: true })
    expect(locate(list, toRow(job(4)))).toEqual({ index: 1, found: false })
    expect(locate(list, toRow(job(0)))).toEqual({ index: 3, found: false })
  })

  it('stays fast with 100k jobs: 1k events, then a filtered list and its visible window', () => {
    const store = new JobsStore()
    store.load(Array.from({ length: 100_000 }, (_, n) => toRow(job(n, { group: `g${n % 10}` }))))
    for (let i = 0; i < 1000; i++) {
      if (i < 100) store.apply({ type: 'removed', id: `seg-${i}` as JobId })
      else if (i < 400) store.apply({ type: 'job', job: job(100_000 + i, { state: 'pending', group: 'g1' }) })
      else store.apply({ type: 'job', job: running(50_000 + i, { group: `g${i % 10}` }) })
    }
    const list = store.list({ text: '', group: 'g1' })
    const top = scrollTop(0, 500, 20, list.length)
    const window = list.slice(top, top + 20)
    expect(store.size).toBe(100_000 - 100 + 300)
    expect(window).toHaveLength(20)
    expect(window.every(j => j.group === 'g1')).toBe(true)
    expect(list[0].id).toBe('seg-100399')
    expect(list.every((j, i) => i === 0 || list[i - 1].submittedAt >= j.submittedAt)).toBe(true)
    expect(store.list({ text: '', state: 'running' }).length).toBe(600)
  })

  it('cycles the state filter and scrolls minimally', () => {
    expect(nextState(undefined)).toBe('pending')
    expect(nextState('failed')).toBe('killed')
    expect(nextState('killed')).toBeUndefined()
    expect(scrollTop(0, 5, 10, 100)).toBe(0)
    expect(scrollTop(0, 15, 10, 100)).toBe(6)
    expect(scrollTop(20, 15, 10, 100)).toBe(15)
    expect(scrollTop(95, 99, 10, 100)).toBe(90)
    expect(scrollTop(3, 0, 10, 0)).toBe(0)
  })
})

describe('ArrayItems', () => {
  const items = (pieces: string[]): { items: unknown[], ended: boolean } => {
    const found: unknown[] = []
    const splitter = new ArrayItems(text => found.push(JSON.parse(text)))
    for (const piece of pieces) splitter.push(piece)
    return { items: found, ended: splitter.ended }
  }

  it('splits the objects of {"key": [...]}, cut at any point, strings with brackets, quotes and escapes included', () => {
    const jobs = [
      { id: 'a', cmd: ['sh', '-c', 'echo "}{" ] [ \\'], env: { X: '\\"' } },
      { id: 'b', attempts: [{ epoch: 1, tail: '}]' }], tags: [] },
      { id: 'c', name: 'ünïcødé ✓' }
    ]
    const text = JSON.stringify({ jobs })
    for (let cut = 0; cut <= text.length; cut++) {
      expect(items([text.slice(0, cut), text.slice(cut)])).toEqual({ items: jobs, ended: true })
    }
    expect(items([...text])).toEqual({ items: jobs, ended: true })
  })

  it('says whether the text ended', () => {
    expect(items(['{"jobs":[]}'])).toEqual({ items: [], ended: true })
    expect(items(['{"jobs":[{"id":"a"},{"id'])).toEqual({ items: [{ id: 'a' }], ended: false })
  })
})

const KEY: Key = {
  upArrow: false, downArrow: false, leftArrow: false, rightArrow: false, pageDown: false, pageUp: false, home: false, end: false,
  return: false, escape: false, ctrl: false, shift: false, tab: false, backspace: false, delete: false, meta: false,
  super: false, hyper: false, capsLock: false, numLock: false
}

const SPECIAL: Record<string, Partial<Key>> = {
  ESC: { escape: true }, DOWN: { downArrow: true }, UP: { upArrow: true }, TAB: { tab: true }, END: { end: true }, '\r': { return: true }, '\b': { backspace: true }
}

/** Presses keys (`ESC`, `DOWN`, `UP`, `TAB`, `END`, `\r`, `\b`, else text typed as one burst) from `state`. */
function press (state: UiState, ctx: KeyContext, ...keys: string[]): { state: UiState, effects: unknown[] } {
  const effects: unknown[] = []
  for (const k of keys) {
    const presses = k in SPECIAL ? [['', { ...KEY, ...SPECIAL[k] }] as [string, Key]] : keyPresses(k, KEY)
    for (const [input, key] of presses) {
      const outcome = handleKey(state, input, key, ctx)
      state = outcome.state
      if (outcome.effect !== undefined) effects.push(outcome.effect)
    }
  }
  return { state, effects }
}

describe('keys', () => {
  const jobs = rows([job(5, { group: 'g' }), job(4), job(3), job(2), job(1)])
  const ctx: KeyContext = { jobs, peers: PEERS, page: 2, paused: g => g === 'g' }

  it('moves the selection, scrolls, and follows the newest job at the top', () => {
    let { state } = press(INITIAL_UI, ctx, 'DOWN', 'DOWN', 'DOWN')
    expect(state.selected?.id).toBe('seg-2')
    expect(state.top).toBe(2)
    state = press(state, ctx, 'UP', 'UP', 'UP').state
    expect(state.selected).toBeUndefined()
    expect(selectedIndex(state, [toRow(job(6)), ...jobs])).toBe(0)
    state = press(state, ctx, 'END').state
    expect(selectedIndex(state, jobs)).toBe(4)
    // The selected job stays selected when a newer one arrives.
    expect(selectedIndex(state, [toRow(job(6)), ...jobs])).toBe(5)
  })

  it('filters by text, state and group, and Esc clears', () => {
    let { state } = press(INITIAL_UI, ctx, '/', 'ma', 'ke\r')
    expect(state.filter).toEqual({ text: 'make' })
    expect(state.prompt).toBeUndefined()
    state = press(state, ctx, '3', 'g', 'build\r').state
    expect(state.filter).toEqual({ text: 'make', state: 'running', group: 'build' })
    state = press(state, ctx, '3').state
    expect(state.filter.state).toBeUndefined()
    state = press(state, ctx, 'f', 'f').state
    expect(state.filter.state).toBe('ready')
    state = press(state, ctx, 'ESC').state
    expect(state.filter).toEqual(NO_FILTER)
  })

  it('asks before killing and draining; retries and pauses at once', () => {
    const asked = press(INITIAL_UI, ctx, 'DOWN', 'k')
    expect(asked.state.confirm?.question).toBe("kill seg-4 (echo 'job 4')?")
    expect(press(asked.state, ctx, 'n').effects).toEqual([])
    expect(press(asked.state, ctx, 'y').effects).toEqual([{ type: 'kill', job: jobs[1] }])
    expect(press(INITIAL_UI, ctx, 'r').effects).toEqual([{ type: 'retry', job: jobs[0] }])
    expect(press(INITIAL_UI, ctx, 'p').effects).toEqual([{ type: 'resume', group: 'g' }])
    expect(press(INITIAL_UI, ctx, 'DOWN', 'p').effects).toEqual([{ type: 'say', text: 'seg-4 is in no group: nothing to pause' }])
    const drain = press(INITIAL_UI, ctx, 'TAB', 'DOWN', 'd', 'y')
    expect(drain.effects).toEqual([{ type: 'drain', peer: PEERS[1] }])
  })

  it('submits the form, or says what is wrong', () => {
    const { state, effects } = press(INITIAL_UI, ctx, 's', 'sh -c "echo hi"', 'TAB', 'build', 'TAB', 'x', '\r')
    expect(effects).toEqual([])
    expect(state.form?.error).toBe('priority must be an integer')
    const fixed = press(state, ctx, '\b', '7', 'TAB', 'a-1, b-2', 'TAB', 'TAB', '2\r')
    expect(fixed.state.form).toBeUndefined()
    expect(fixed.effects).toEqual([{ type: 'submit', request: { cmd: ['sh', '-c', 'echo hi'], group: 'build', pri: 7, after: ['a-1', 'b-2'], retries: 2 } }])
  })

  it('opens the detail, help and peers views and goes back; q quits', () => {
    expect(press(INITIAL_UI, ctx, '\r').state).toMatchObject({ view: 'detail', detail: jobs[0] })
    expect(press(INITIAL_UI, ctx, '\r', 'ESC').state.view).toBe('jobs')
    expect(press(INITIAL_UI, ctx, 'TAB', '?').state).toMatchObject({ view: 'help', back: 'peers' })
    expect(press(INITIAL_UI, ctx, 'TAB', '?', 'ESC').state.view).toBe('peers')
    expect(press(INITIAL_UI, ctx, 'q').effects).toEqual([{ type: 'quit' }])
    expect(press(INITIAL_UI, ctx, 's', 'q').effects).toEqual([])
  })

  it('splits a burst of text into key presses, Enter and Tab included', () => {
    expect(keyPresses('k', KEY)).toEqual([['k', KEY]])
    expect(keyPresses('a\tb\r', KEY)).toEqual([['a', KEY], ['', { ...KEY, tab: true }], ['b', KEY], ['', { ...KEY, return: true }]])
  })
})

describe('form and text', () => {
  it('splits a command like a shell', () => {
    expect(splitCommand(`sh -c 'echo "a b"; exit 3'  x\\ y ""`)).toEqual(['sh', '-c', 'echo "a b"; exit 3', 'x y', ''])
    expect(() => splitCommand("echo 'open")).toThrow(/unclosed '/)
    expect(() => formRequest(['  ', '', '', '', '', ''])).toThrow('type a command')
    expect(() => formRequest(['true', '', '', '', '', '-1'])).toThrow('retries must be an integer ≥ 0')
    expect(formRequest(['true', '', '-3', '', 'gpu', ''])).toEqual({ cmd: ['true'], pri: -3, tag: ['gpu'] })
  })

  it('fits columns to the width, dropping the least useful first', () => {
    const titles = (width: number): string[] => layout(JOB_COLUMNS, width).map(c => c.title)
    expect(titles(78)).toEqual(['ID', 'STATE', 'GROUP', 'NAME/COMMAND', 'NODE', 'TRY', 'TIME', 'EXIT'])
    expect(titles(50)).toEqual(['ID', 'STATE', 'NAME/COMMAND', 'TIME', 'EXIT'])
    expect(layout(JOB_COLUMNS, 158).reduce((sum, c) => sum + c.width + 1, -1)).toBe(158)
    expect(fit('a\x1b[31mred\x1b[0m\tb', 8)).toBe('ared  b ')
    expect(fit('abcdef', 4)).toBe('abc…')
    expect(sparkline([0, 1, 2, 4], 3)).toBe('▃▅█')
  })

  it('keeps the last lines of a log, across chunk boundaries and carriage returns', () => {
    const tail = new LineTail(2)
    const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
    tail.push(bytes('one\ntwo\nthr'))
    tail.push(bytes('ee\n10%\r50%'))
    expect(tail.lines()).toEqual(['two', 'three', '50%'])
    const euro = bytes('€\n')
    tail.push(euro.slice(0, 2))
    tail.push(euro.slice(2))
    expect(tail.lines()).toEqual(['three', '10%\r50%€'].map(l => l.slice(l.lastIndexOf('\r') + 1)))
  })
})

describe('followJobs', () => {
  it('closes the event stream of a try whose load failed before it tries again', async () => {
    const streams: AbortSignal[] = []
    const client = new NodeClient({
      openEvents: async signal => {
        streams.push(signal as AbortSignal)
        return { async * [Symbol.asyncIterator] () {} }
      },
      request: async () => { throw new Error('the node went away') },
      stream: async function * () {},
      openLines: async () => { throw new Error('not used') },
      describe: () => 'a fake node'
    })
    const stop = new AbortController()
    const errors: Array<Error | undefined> = []
    const following = followJobs(client, new JobsStore(), { changed: () => {}, report: e => { errors.push(e) } }, stop.signal)
    await waitFor(() => streams.length >= 2, { what: 'a second try' })
    // the first try's stream was closed when its load failed, not left open until the dashboard quits
    expect(streams[0].aborted).toBe(true)
    stop.abort()
    await following
    expect(errors[0]?.message).toBe('the node went away')
  })
})
