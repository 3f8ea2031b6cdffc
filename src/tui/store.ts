/**
 * The dashboard's jobs, outside React: a map kept in sync by the event stream, with a list sorted
 * newest first that events update in place (binary search), and a version that changes with it.
 * Each job is kept as a compact row (what the table, the filters and the header need): 100,000
 * full jobs would take three times the memory. The detail view asks the node for the full job.
 * Pure: no I/O, no timers.
 */
import { shellQuote } from '../shell-quote.js'
import { JOB_STATES, type JobState, type JobView, type NodeEvent } from '../types.js'

/** What the dashboard keeps of a job. Times are in ms since the epoch. */
export interface JobRow {
  id: string
  state: JobState
  group: string | undefined
  /** The name, or else the command (cut to LABEL_MAX characters). */
  label: string
  /** The command (cut) when the label is the name, for the text filter. */
  command: string | undefined
  /** The node that runs or ran it (the full peer id). */
  node: string | undefined
  /** Its tags, comma-separated. */
  tags: string
  tries: number
  submittedAt: number
  startedAt: number | undefined
  endedAt: number | undefined
  /** The exit code, the signal that ended the last attempt (without `SIG`), or `-`. */
  exit: string
  /** It waits because its group is paused. */
  groupPaused: boolean
}

/** Longer names and commands are cut: no terminal shows more of them in the table. */
export const LABEL_MAX = 200

/**
 * The few distinct strings that many jobs repeat (groups, nodes, tags, exits), shared: parsed from
 * JSON, every job would have its own copy.
 */
const interned = new Map<string, string>()

function intern (text: string): string {
  let shared = interned.get(text)
  if (shared === undefined) interned.set(text, shared = text)
  return shared
}

function internOptional (text: string | undefined): string | undefined {
  return text === undefined ? undefined : intern(text)
}

/** `text` cut to `max` characters, as a string of its own (a slice keeps the whole text alive). */
function cut (text: string, max: number): string {
  return text.length <= max ? text : Buffer.from(text.slice(0, max - 1) + '…').toString()
}

function time (iso: string | undefined): number | undefined {
  return iso === undefined ? undefined : Date.parse(iso)
}

function exitText (job: JobView): string {
  if (job.exitCode !== undefined) return intern(String(job.exitCode))
  return intern(job.attempts.at(-1)?.signal?.replace(/^SIG/, '') ?? '-')
}

/** The row of `job` (which can then be dropped). */
export function toRow (job: JobView): JobRow {
  const command = cut(shellQuote(job.cmd), LABEL_MAX)
  const group = internOptional(job.group)
  return {
    id: job.id,
    state: job.state,
    group,
    label: job.name === undefined ? command : cut(job.name, LABEL_MAX),
    command: job.name === undefined ? undefined : command,
    node: internOptional(job.node),
    tags: intern(job.tags.join(',')),
    tries: job.attempts.length,
    submittedAt: Date.parse(job.submittedAt),
    startedAt: time(job.startedAt),
    endedAt: time(job.endedAt),
    exit: job.array === undefined ? exitText(job) : `${job.array.states.done}/${job.array.tasks} done`,
    groupPaused: group !== undefined && job.reason?.startsWith(`group ${group} paused`) === true
  }
}

export interface JobFilter {
  /** Case-insensitive substring of the id, name, command, group, node or tags. */
  text: string
  state?: JobState
  /** Exact group name. */
  group?: string
}

export const NO_FILTER: JobFilter = { text: '' }

export class JobsStore {
  private readonly byId = new Map<string, JobRow>()
  /** Every job, newest first. */
  private sorted: JobRow[] = []
  private changes = 0
  private loaded = false
  /** Filtered lists of the current version, by filter. */
  private cache = { version: 0, lists: new Map<string, JobRow[]>() }

  /** Changes whenever a job is added, changed or removed. */
  get version (): number {
    return this.changes
  }

  get size (): number {
    return this.byId.size
  }

  /** Whether the store holds every job (not just the newest, while the rest loads). */
  get complete (): boolean {
    return this.loaded
  }

  get (id: string): JobRow | undefined {
    return this.byId.get(id)
  }

  /** Replaces every job (a fresh `GET /v1/jobs`), or with `complete` false, the newest ones. */
  load (jobs: JobRow[], complete = true): void {
    this.byId.clear()
    for (const job of jobs) this.byId.set(job.id, job)
    this.sorted = [...this.byId.values()].sort(newestFirst)
    this.loaded = complete
    this.changes++
  }

  /** Applies one event of `GET /v1/events`; other event types, and tasks of arrays, are ignored. */
  apply (event: NodeEvent): void {
    // an array is one row, which the node's events about the array keep up to date
    if (event.type === 'job' && event.job.arrayId === undefined) this.put(toRow(event.job))
    else if (event.type === 'removed') this.remove(event.id)
  }

  /**
   * The jobs that pass `filter`, newest first (cached until the next change). Without a filter,
   * the store's own list, not a copy (100,000 jobs are copied in milliseconds, at every frame):
   * read it at once, it changes with the store.
   */
  list (filter: JobFilter): readonly JobRow[] {
    if (isEmpty(filter)) return this.sorted
    if (this.cache.version !== this.changes) this.cache = { version: this.changes, lists: new Map() }
    const key = JSON.stringify([filter.text, filter.state, filter.group])
    let jobs = this.cache.lists.get(key)
    if (jobs === undefined) {
      jobs = this.sorted.filter(matcher(filter))
      this.cache.lists.set(key, jobs)
    }
    return jobs
  }

  /** Whether any job satisfies `test` (a full scan: for key presses, not for frames). */
  some (test: (job: JobRow) => boolean): boolean {
    for (const job of this.byId.values()) if (test(job)) return true
    return false
  }

  private put (job: JobRow): void {
    const { index, found } = locate(this.sorted, job)
    if (found) this.sorted[index] = job
    else this.sorted.splice(index, 0, job)
    this.byId.set(job.id, job)
    this.changes++
  }

  private remove (id: string): void {
    const job = this.byId.get(id)
    if (job === undefined) return
    const { index, found } = locate(this.sorted, job)
    if (found) this.sorted.splice(index, 1)
    this.byId.delete(id)
    this.changes++
  }
}

/** Newest first: by submit time, then by id (numbers in ids compared as numbers). */
function newestFirst (a: JobRow, b: JobRow): number {
  if (a.submittedAt !== b.submittedAt) return a.submittedAt < b.submittedAt ? 1 : -1
  return compareIds(b.id, a.id)
}

/** `abc-9` < `abc-10`: ids are `<segment>-<n>`. */
function compareIds (a: string, b: string): number {
  const dashA = a.lastIndexOf('-')
  const dashB = b.lastIndexOf('-')
  if (dashA > 0 && dashA === dashB && a.slice(0, dashA) === b.slice(0, dashB)) {
    const diff = Number(a.slice(dashA + 1)) - Number(b.slice(dashB + 1))
    if (!Number.isNaN(diff) && diff !== 0) return diff
  }
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * Where `job` is (or would be) in `list` (sorted newest first). Works with any version of the job,
 * even a removed one: the sort key (submit time and id) never changes.
 */
export function locate (list: readonly JobRow[], job: JobRow): { index: number, found: boolean } {
  let low = 0
  let high = list.length
  while (low < high) {
    const mid = (low + high) >>> 1
    const order = newestFirst(list[mid], job)
    if (order === 0) return { index: mid, found: true }
    if (order < 0) low = mid + 1
    else high = mid
  }
  return { index: low, found: false }
}

const haystacks = new WeakMap<JobRow, string>()

/** The lower-cased text the text filter searches, computed once per job version. */
function haystack (job: JobRow): string {
  let text = haystacks.get(job)
  if (text === undefined) {
    text = [job.id, job.label, job.command, job.group, job.node, job.tags].filter(Boolean).join('\n').toLowerCase()
    haystacks.set(job, text)
  }
  return text
}

/** The test of `filter`. */
function matcher (filter: JobFilter): (job: JobRow) => boolean {
  const { state, group } = filter
  const text = filter.text.toLowerCase()
  return job => (state === undefined || job.state === state) &&
    (group === undefined || job.group === group) &&
    (text === '' || haystack(job).includes(text))
}

export function isEmpty (filter: JobFilter): boolean {
  return filter.text === '' && filter.state === undefined && filter.group === undefined
}

/** The next state of the `f` cycle: none, pending, …, killed, none. */
export function nextState (state: JobState | undefined): JobState | undefined {
  return state === undefined ? JOB_STATES[0] : JOB_STATES[JOB_STATES.indexOf(state) + 1]
}

/** The first row to show so that row `index` of `total` is visible in `height` rows, moving as little as possible from `top`. */
export function scrollTop (top: number, index: number, height: number, total: number): number {
  const visible = Math.min(Math.max(top, index - height + 1), index)
  return Math.max(0, Math.min(visible, total - height))
}
