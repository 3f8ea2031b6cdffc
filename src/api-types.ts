/**
 * What clients send and receive about jobs: submit and change requests, job records, job events.
 * Imports only the other type modules: client commands import it and must start fast.
 */
import type { Attempt, AttemptReading, FailReason, JobId, JobRunOptions, JobSpec, JobState, PeerIdString } from './job-types.js'
import type { NodeStatus } from './peer-types.js'
import type { ArrayRange } from './array-task.js'

/** What a client sends to change queued jobs: the flags of `meshq mod`. */
export interface ModifyRequest {
  name?: string
  pri?: number
  retries?: number
  ttr?: string | number
  timeout?: string | number
  delay?: string | number
  tag?: string[] | string
  cores?: number
}

/** What `meshq gc` dropped (or would drop, with `dryRun`). */
export interface GcResult {
  segments: string[]
  jobs: number
  dryRun: boolean
}

/** A group's cap on jobs running at once across the mesh (`meshq limit`). */
export interface LimitView {
  group: string
  limit: number
  /** Jobs of the group running now, as this node knows. */
  running: number
}

/** The API and CLI's view of one job (the JSON shape of cli.md). */
export interface ArrayView {
  first: number
  last: number
  step: number
  limit?: number
  tasks: number
  states: Record<JobState, number>
}

/** The spec fields a job's record shows as they are (its times it shows as ISO 8601). */
type SpecShown = 'id' | 'name' | 'cmd' | 'cwd' | 'group' | 'after' | 'afterGroup' | 'afterAny' | 'afterGroupAny' | 'pri' | 'retries' |
  'ttrMs' | 'timeoutMs' | 'tags' | 'cores' | 'env' | 'key' | 'out' | 'arrayId' | 'arrayIndex' | keyof JobRunOptions

export interface JobView extends Pick<JobSpec, SpecShown> {
  state: JobState
  reason?: string
  exitCode?: number
  node?: PeerIdString
  submittedAt: string
  startedAt?: string
  endedAt?: string
  notBefore?: string
  attempts: AttemptView[]
  /** A job array (`sub --array`): its range, cap and how many tasks are in each state. */
  array?: ArrayView
}

/** One job's state, as `POST /v1/jobs/states` answers it (`meshq status`). */
export interface JobStateView {
  id: JobId
  state: JobState
}

/** An attempt as clients see it: times as ISO 8601, and whether it was lost. */
export interface AttemptView extends Pick<Attempt, 'epoch' | 'node' | 'exitCode' | 'signal' | 'failReason' | AttemptReading> {
  claimedAt: string
  startedAt?: string
  endedAt?: string
  lost?: boolean
}

/** What a client sends to submit a job: the flags of `meshq sub` (and the fields of `--batch`). */
export interface SubmitRequest {
  cmd: string[]
  name?: string
  group?: string
  after?: string[] | string
  afterGroup?: string[] | string
  afterAny?: string[] | string
  afterGroupAny?: string[] | string
  pri?: number
  retries?: number
  ttr?: string | number
  timeout?: string | number
  delay?: string | number
  /** Do not start before this time: an ISO 8601 date-time, or wall-clock ms. */
  begin?: string | number
  /** Absent: the node's user's home directory. */
  cwd?: string
  env?: Record<string, string>
  tag?: string[] | string
  cores?: number
  out?: string
  onSuccess?: string
  onFailure?: string
  onExit?: string
  tmpdir?: boolean
  keepTmpdir?: boolean
  cleanup?: boolean
  /** Bytes, or a size such as `512M` or `2G`. */
  mem?: string | number
  id?: string
  allowMissing?: boolean
  /** A shell command run first as its own job; the jobs it prints run before this one (`sub --expand`). */
  expand?: string
  /** A job array: `1-1000`, `1-1000:2`, `0-99%10` (Slurm's syntax), or the range itself. */
  array?: string | ArrayRange
  /** The most tasks of the array running at once across the mesh. */
  arrayLimit?: number
}

/** A change seen on the node's event stream. */
export type NodeEvent =
  | { type: 'job', job: JobView }
  | { type: 'removed', id: JobId }
  | { type: 'node', status: NodeStatus }

export const JobEventKind = {
  submitted: 'submitted',
  started: 'started',
  done: 'done',
  failed: 'failed',
  killed: 'killed',
  lost: 'lost',
  retried: 'retried',
  removed: 'removed'
} as const
export type JobEventKind = typeof JobEventKind[keyof typeof JobEventKind]
export const JOB_EVENT_KINDS: readonly JobEventKind[] = Object.values(JobEventKind)

/** One change of a job's state, as `meshq events` prints it (the same on every node). */
export interface JobEvent {
  at: string
  job: JobId
  event: JobEventKind
  /** The node that ran the attempt, or that submitted or requested the change. */
  node?: PeerIdString
  epoch?: number
  exitCode?: number
  signal?: string
  failReason?: FailReason
  /** For humans: why, e.g. `retry 1/2` or `requested by <peer>`. */
  detail?: string
  name?: string
  group?: string
}
