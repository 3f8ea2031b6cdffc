/**
 * Human output: tables, times, state colours, one job in full.
 */
import { formatDuration } from '../duration.js'
import { shellQuote } from '../shell-quote.js'
import { JOB_STATES, isTerminal, type ArrayView, type AttemptView, type JobState, type JobView } from '../types.js'

const STATE_COLOURS: Record<JobState, number> = {
  pending: 90, ready: 33, running: 36, done: 32, failed: 31, killed: 35
}

/** The state name, coloured when `color` is on. */
export function paintState (state: JobState, color: boolean): string {
  return color ? `\x1b[${STATE_COLOURS[state] ?? 39}m${state}\x1b[39m` : state
}

// eslint-disable-next-line no-control-regex -- matching escape sequences is this pattern's job
const ANSI = /\x1b\[[0-9;]*m/g
const visibleLength = (s: string): number => s.replace(ANSI, '').length

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function table (header: string[], rows: string[][]): string[] {
  const all = [header, ...rows]
  const widths = header.map((_, c) => Math.max(...all.map(row => visibleLength(row[c] ?? ''))))
  return all.map(row => row
    .map((cell, c) => c === row.length - 1 ? cell : cell + ' '.repeat(widths[c] - visibleLength(cell)))
    .join('  ')
    .trimEnd())
}

export function truncate (s: string, max: number): string {
  const flat = s.replace(/\s+/g, ' ')
  return flat.length <= max ? flat : flat.slice(0, max - 1) + '…'
}

const ms = (iso: string | undefined): number | undefined => iso === undefined ? undefined : Date.parse(iso)

/** Runtime for started jobs (so far, or in total), age for jobs not started. */
export function jobTime (job: JobView, now = Date.now()): string {
  const started = ms(job.startedAt)
  const ended = ms(job.endedAt)
  if (started !== undefined) {
    const end = job.state === 'running' ? now : (ended ?? now)
    return formatDuration(Math.max(0, end - started))
  }
  if (isTerminal(job.state)) return '-'
  return formatDuration(Math.max(0, now - (ms(job.submittedAt) ?? now)))
}

/** An array's tasks by state, the states that have any: `10 tasks: 7 done, 3 running`. */
export function arraySummary ({ tasks, states }: ArrayView): string {
  const counts = JOB_STATES.filter(state => states[state] > 0).map(state => `${states[state]} ${state}`)
  return `${tasks} tasks${counts.length > 0 ? `: ${counts.join(', ')}` : ''}`
}

/** `exit N` once the job has an exit code, else why it is where it is; for an array, its tasks by state. */
export function jobOutcome (job: JobView): string {
  if (job.array !== undefined) return arraySummary(job.array)
  if (job.exitCode !== undefined) return `exit ${job.exitCode}`
  return job.reason ?? ''
}

export function jobLabel (job: JobView): string {
  return job.name ?? shellQuote(job.cmd)
}

export function jobTable (jobs: JobView[], color: boolean, now = Date.now()): string[] {
  return table(
    ['ID', 'STATE', 'PRI', 'GROUP', 'NAME/CMD', 'TIME', 'REASON'],
    jobs.map(job => [
      job.id,
      paintState(job.state, color),
      String(job.pri),
      job.group ?? '-',
      truncate(jobLabel(job), 40),
      jobTime(job, now),
      truncate(jobOutcome(job), 60)
    ])
  )
}

/** A size in KiB for humans, in binary units: `812K`, `312.5M`, `2.25G`. */
export function formatKb (kb: number): string {
  if (kb < 1024) return `${kb}K`
  return kb < 1024 * 1024 ? `${(kb / 1024).toFixed(1)}M` : `${(kb / 1024 / 1024).toFixed(2)}G`
}

/** An attempt's peak RSS, CPU time and wall time (`-` for what is not known). */
function attemptResources (a: AttemptView): string[] {
  const wallMs = a.startedAt !== undefined && a.endedAt !== undefined ? Date.parse(a.endedAt) - Date.parse(a.startedAt) : undefined
  return [
    a.peakRssKb === undefined ? '-' : formatKb(a.peakRssKb),
    a.cpuMs === undefined ? '-' : formatDuration(a.cpuMs),
    wallMs === undefined ? '-' : formatDuration(wallMs)
  ]
}

/** One job in full, for `meshq show`. */
export function jobDetails (job: JobView, color: boolean): string[] {
  const fields: Array<[string, string | number | undefined]> = [
    ['id', job.id],
    ['name', job.name],
    ['state', paintState(job.state, color)],
    ['reason', job.reason],
    ['exit', job.exitCode],
    ['cmd', shellQuote(job.cmd)],
    ['cwd', job.cwd],
    ['array', job.array === undefined ? undefined : `${arrayRange(job.array)} (${arraySummary(job.array)})`],
    ['array-limit', job.array?.limit],
    ['array-task', job.arrayId === undefined ? undefined : `index ${job.arrayIndex ?? '?'} of array ${job.arrayId}`],
    ['group', job.group],
    ['after', job.after.join(', ') || undefined],
    ['after-group', job.afterGroup.join(', ') || undefined],
    ['after-any', job.afterAny?.join(', ')],
    ['after-group-any', job.afterGroupAny?.join(', ')],
    ['pri', job.pri],
    ['retries', job.retries],
    ['ttr', formatDuration(job.ttrMs)],
    ['timeout', job.timeoutMs === undefined ? undefined : formatDuration(job.timeoutMs)],
    ['not-before', job.notBefore],
    ['tags', job.tags.join(', ') || undefined],
    ['cores', job.cores],
    ['env', Object.entries(job.env).map(([k, v]) => `${k}=${v}`).join(' ') || undefined],
    ['out', job.out],
    ['mem', job.memBytes === undefined ? undefined : formatKb(Math.round(job.memBytes / 1024))],
    ['tmpdir', tmpdirPolicy(job)],
    ['on-success', job.onSuccess],
    ['on-failure', job.onFailure],
    ['on-exit', job.onExit],
    ['key', job.key],
    ['node', job.node],
    ['submitted', job.submittedAt],
    ['started', job.startedAt],
    ['ended', job.endedAt]
  ]
  const present = fields.filter(([, v]) => v !== undefined)
  const width = Math.max(...present.map(([k]) => k.length)) + 1
  const lines = present.map(([k, v]) => `${(k + ':').padEnd(width)}  ${String(v)}`)
  if (job.attempts.length > 0) {
    lines.push('', 'attempts:')
    lines.push(...table(
      ['EPOCH', 'NODE', 'STARTED', 'ENDED', 'EXIT', 'SIGNAL', 'FAIL', 'PEAK RSS', 'CPU', 'WALL'],
      job.attempts.map(a => [
        String(a.epoch),
        attemptNode(a),
        a.startedAt ?? '-',
        a.endedAt ?? '-',
        a.exitCode === undefined ? '-' : String(a.exitCode),
        a.signal ?? '-',
        a.failReason ?? (a.lost === true ? 'lost' : '-'),
        ...attemptResources(a)
      ])
    ).map(line => '  ' + line))
    if (job.attempts.some(a => a.uncontained === true)) lines.push(UNCONTAINED_NOTE)
  }
  return lines
}

const arrayRange = ({ first, last, step }: ArrayView): string => `${first}-${last}${step > 1 ? `:${step}` : ''}`

/** Whether the job runs in a private directory, and when that directory is removed. */
function tmpdirPolicy (job: JobView): string | undefined {
  if (job.tmpdir !== true) return undefined
  if (job.keepTmpdir === true) return 'yes, kept'
  return job.cleanup === true ? 'yes, always removed' : 'yes, kept after a failure'
}

const UNCONTAINED_NOTE =
  '  uncontained: the node had no cgroup for the attempt; processes that left its process group (setsid) were not killed with it'

/** The node that ran an attempt, with what is special about the run: `(alone)`, `(uncontained)`. */
function attemptNode (a: AttemptView): string {
  const marks = [a.alone === true ? 'alone' : undefined, a.uncontained === true ? 'uncontained' : undefined]
    .filter(mark => mark !== undefined)
  return marks.length === 0 ? a.node : `${a.node} (${marks.join(', ')})`
}
