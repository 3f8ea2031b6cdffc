/**
 * The fields of a job, once. A submit request's fields (`SUBMIT_FIELDS`) say what the job record
 * shows of each, so that `rm --json` can write the job back as a request, and whether an
 * `--expand` generator inherits it; a spec's fields (`SPEC_FIELDS`) say how the job record shows
 * each. The record (`toJobView`), the requeue lines and the generator derive from these tables,
 * and `satisfies` makes a field of `SubmitRequest` or `JobSpec` missing here a compile error.
 */
import type { JobId, JobSpec, JobView, SubmitRequest } from '../types.js'

/**
 * How `rm --json` writes a request field back from a job record: from the record field named
 * (`dependencies`: an id list whose ids may become `#N`), from `notBefore` as what is left of the
 * wait (`delay`), or not at all (`null`).
 */
type Requeue = { from: keyof JobView, dependencies?: true } | 'delay' | null

interface SubmitField {
  requeue: Requeue
  /** An `--expand` generator is submitted with this field of the job it generates for. */
  generator: boolean
}

export const SUBMIT_FIELDS = {
  cmd: { requeue: { from: 'cmd' }, generator: false },
  name: { requeue: { from: 'name' }, generator: false },
  group: { requeue: { from: 'group' }, generator: true },
  after: { requeue: { from: 'after', dependencies: true }, generator: true },
  afterGroup: { requeue: { from: 'afterGroup' }, generator: true },
  afterAny: { requeue: { from: 'afterAny', dependencies: true }, generator: true },
  afterGroupAny: { requeue: { from: 'afterGroupAny' }, generator: true },
  pri: { requeue: { from: 'pri' }, generator: true },
  retries: { requeue: { from: 'retries' }, generator: true },
  ttr: { requeue: { from: 'ttrMs' }, generator: true },
  timeout: { requeue: { from: 'timeoutMs' }, generator: false },
  delay: { requeue: 'delay', generator: true },
  // the record keeps one start time (`notBefore`), which `delay` writes back
  begin: { requeue: null, generator: true },
  cwd: { requeue: { from: 'cwd' }, generator: true },
  env: { requeue: { from: 'env' }, generator: true },
  tag: { requeue: { from: 'tags' }, generator: true },
  cores: { requeue: { from: 'cores' }, generator: false },
  out: { requeue: { from: 'out' }, generator: false },
  onSuccess: { requeue: { from: 'onSuccess' }, generator: false },
  onFailure: { requeue: { from: 'onFailure' }, generator: false },
  onExit: { requeue: { from: 'onExit' }, generator: false },
  tmpdir: { requeue: { from: 'tmpdir' }, generator: false },
  keepTmpdir: { requeue: { from: 'keepTmpdir' }, generator: false },
  cleanup: { requeue: { from: 'cleanup' }, generator: false },
  mem: { requeue: { from: 'memBytes' }, generator: false },
  // the idempotency key still names the removed job; the generator's is the job's with `:expand`
  id: { requeue: null, generator: false },
  allowMissing: { requeue: null, generator: true },
  expand: { requeue: null, generator: false },
  // a record of `rm --json` is one task's, written back as a job of its own
  array: { requeue: null, generator: false },
  arrayLimit: { requeue: null, generator: false }
} as const satisfies { [K in keyof Required<SubmitRequest>]: SubmitField }

/** How the job record shows a spec field: as it is, as an ISO 8601 time (from ms), or not at all. */
type Shown = 'same' | 'time' | null

export const SPEC_FIELDS = {
  id: 'same',
  name: 'same',
  cmd: 'same',
  cwd: 'same',
  group: 'same',
  after: 'same',
  afterGroup: 'same',
  afterAny: 'same',
  afterGroupAny: 'same',
  pri: 'same',
  retries: 'same',
  ttrMs: 'same',
  timeoutMs: 'same',
  tags: 'same',
  cores: 'same',
  env: 'same',
  key: 'same',
  out: 'same',
  onSuccess: 'same',
  onFailure: 'same',
  onExit: 'same',
  tmpdir: 'same',
  keepTmpdir: 'same',
  cleanup: 'same',
  memBytes: 'same',
  submittedAt: 'time',
  notBefore: 'time',
  allowMissing: null,
  expand: null,
  submitter: null,
  n: null,
  seq: null,
  // an array's record shows its range with its tasks' states (src/sched/array-view.ts)
  array: null,
  arrayLimit: null,
  arrayId: 'same',
  arrayIndex: 'same'
} as const satisfies { [K in keyof Required<JobSpec>]: Shown }

type FieldsShown<S extends Shown> =
  { [K in keyof typeof SPEC_FIELDS]: (typeof SPEC_FIELDS)[K] extends S ? K : never }[keyof typeof SPEC_FIELDS]

/** The spec's part of a job record: the spec's fields as they are, and its times as ISO 8601. */
type SpecView = Pick<JobSpec, FieldsShown<'same'>> & { [K in FieldsShown<'time'>]: JobSpec[K] extends number ? string : string | undefined }

/** Wall-clock ms as the job record shows times. */
export const isoTime = (ms: number | undefined): string | undefined => ms == null ? undefined : new Date(ms).toISOString()

const entries = <T extends object>(table: T): Array<[keyof T, T[keyof T]]> => Object.entries(table) as Array<[keyof T, T[keyof T]]>

// listed once: every job record of `ls` goes through them
const SAME_FIELDS = entries(SPEC_FIELDS).filter(([, shown]) => shown === 'same').map(([field]) => field)
const TIME_FIELDS = entries(SPEC_FIELDS).filter(([, shown]) => shown === 'time').map(([field]) => field)

/**
 * The spec's fields as the job record shows them. (The return type makes the compiler check that
 * the record has every field shown, with the type shown.)
 */
export function specView (spec: JobSpec): Pick<JobView, keyof SpecView> {
  const view: Record<string, unknown> = {}
  for (const field of SAME_FIELDS) view[field] = spec[field]
  for (const field of TIME_FIELDS) view[field] = isoTime(spec[field] as number | undefined)
  const shown = view as SpecView
  return shown
}

/**
 * The request that submits a job again (`rm --json`), empty fields left out. `dependency` says how
 * to name a job it waits for; `now` turns its start time back into a delay.
 */
export function requeueRequest (job: JobView, dependency: (id: JobId) => string, now: number): Partial<SubmitRequest> {
  const request: Record<string, unknown> = {}
  for (const [field, { requeue }] of entries(SUBMIT_FIELDS)) {
    if (requeue === null) continue
    if (requeue === 'delay') {
      const delay = job.notBefore === undefined ? 0 : Date.parse(job.notBefore) - now
      request[field] = delay > 0 ? delay : undefined
    } else {
      const value = job[requeue.from]
      request[field] = 'dependencies' in requeue ? (value as JobId[] | undefined)?.map(dependency) : value
    }
  }
  const empty = (value: unknown): boolean =>
    value === undefined || (typeof value === 'object' && value !== null && Object.keys(value).length === 0)
  return Object.fromEntries(Object.entries(request).filter(([, value]) => !empty(value)))
}

/** The fields of a request that its `--expand` generator is submitted with. */
export function generatorFields (request: SubmitRequest): Partial<SubmitRequest> {
  const inherited: Record<string, unknown> = {}
  for (const [field, { generator }] of entries(SUBMIT_FIELDS)) if (generator) inherited[field] = request[field]
  return inherited
}
