/**
 * The data model shared by the node, the control API and the CLI.
 * This module must stay dependency-free: client commands import it and must start fast.
 */

import type { ArrayRange } from './array-task.js'

export type JobId = string & { readonly __brand: 'JobId' }
/** A libp2p peer id in its string form. */
export type PeerIdString = string & { readonly __brand: 'PeerIdString' }

export const JobState = {
  pending: 'pending',
  ready: 'ready',
  running: 'running',
  done: 'done',
  failed: 'failed',
  killed: 'killed'
} as const
export type JobState = typeof JobState[keyof typeof JobState]
export const JOB_STATES: readonly JobState[] = Object.values(JobState)

export function isTerminal (state: JobState): boolean {
  return state === JobState.done || state === JobState.failed || state === JobState.killed
}

export const FailReason = {
  commandNotFound: 'command-not-found',
  notExecutable: 'not-executable',
  cwdMissing: 'cwd-missing',
  nonZeroExit: 'non-zero-exit',
  signaled: 'signaled',
  killed: 'killed',
  timedOut: 'timed-out',
  lost: 'lost',
  spawnError: 'spawn-error',
  /** The job's process group used more memory than its `--mem` limit. */
  memory: 'memory',
  /** A `sub --expand` generator exited 0 but its output could not be submitted as jobs. */
  expandFailed: 'expand-failed'
} as const
export type FailReason = typeof FailReason[keyof typeof FailReason]

/** What happens around a job's run on the node that runs it: hooks, private directory, memory limit. */
export interface JobRunOptions {
  /** Shell commands (`sh -c`) run where an attempt ran, once it is recorded: see docs/jobs.md. */
  onSuccess?: string
  onFailure?: string
  onExit?: string
  /** Run each attempt in a fresh private directory under `cwd`, which is also its TMPDIR. */
  tmpdir?: boolean
  /** Never remove the private directory (by default only a failed attempt's is kept). */
  keepTmpdir?: boolean
  /** Remove the private directory after a failed attempt too. */
  cleanup?: boolean
  /** Kill the attempt when its process group's RSS exceeds this many bytes (`--mem`). */
  memBytes?: number
}

/** A job spec as the submitter wrote it into the ledger. Written once, never changed. */
export interface JobSpec extends JobRunOptions {
  id: JobId
  name?: string
  cmd: string[]
  cwd: string
  env: Record<string, string>
  group?: string
  after: JobId[]
  afterGroup: string[]
  /** Run after these jobs end, whatever their outcome (Slurm's `afterany`). Absent in older specs. */
  afterAny?: JobId[]
  /** Run after every job of these groups has ended, whatever the outcome. */
  afterGroupAny?: string[]
  pri: number
  retries: number
  ttrMs: number
  timeoutMs?: number
  /** Wall-clock ms (submitter's clock) before which the job must not start. */
  notBefore?: number
  tags: string[]
  cores: number
  out?: string
  /** Idempotency key (`--id KEY`). */
  key?: string
  allowMissing?: boolean
  /** A `sub --expand` generator: each JSON line of its stdout is submitted as a job (src/sched/expand.ts). */
  expand?: boolean
  submitter: PeerIdString
  /** Wall-clock ms on the submitter. */
  submittedAt: number
  /** Position in its segment (the number in its id). */
  n: number
  /** The submitter's running count of jobs: with submittedAt, the FIFO order. */
  seq: number
  /** A job array's indices (`--array`): this spec stands for one task per index (src/array-task.ts). */
  array?: ArrayRange
  /** The most tasks of this array running at once across the mesh (`--array-limit`, Slurm's `%N`). */
  arrayLimit?: number
  /** A task of an array: the array's id. Tasks are never in the ledger; each node derives them from the array's spec. */
  arrayId?: JobId
  /** A task of an array: its index, which the job sees as MESHQ_ARRAY_INDEX. */
  arrayIndex?: number
}

/** One run of a job by one peer. Key `<epoch>:<peer>`; only that peer writes it. */
export interface Attempt {
  job: JobId
  epoch: number
  node: PeerIdString
  /** Lamport stamp of the job's control facts seen at claim time: the round this attempt belongs to. */
  basis: number
  claimedAt: number
  startedAt?: number
  endedAt?: number
  exitCode?: number
  signal?: string
  failReason?: FailReason
  /** The claim lost arbitration and was withdrawn before it started. */
  withdrawn?: boolean
  /**
   * Won while this node had been cut off from every member for a while, without votes: a run of
   * one side of a partition, which the other side may run too. Such a run is not fenced.
   */
  alone?: boolean
  /**
   * The node could not put the run in a cgroup (see docs/guarantees.md): processes that left its
   * process group (setsid) were not killed with it.
   */
  uncontained?: boolean
  stdoutBytes?: number
  stderrBytes?: number
  truncated?: boolean
  tail?: string
  peakRssKb?: number
  cpuMs?: number
}

export const ControlKind = { kill: 'kill', retry: 'retry', remove: 'rm', modify: 'mod' } as const
export type ControlKind = typeof ControlKind[keyof typeof ControlKind]

/** The spec fields `meshq mod` may change on a job that has not started. */
export type SpecPatch = Partial<Pick<JobSpec, 'name' | 'pri' | 'retries' | 'ttrMs' | 'timeoutMs' | 'tags' | 'cores' | 'notBefore'>>

/** A user's request about a job. Key `<lamport>:<peer>`; immutable. */
export interface Control {
  kind: ControlKind
  lamport: number
  by: PeerIdString
  at: number
  /** For `mod`: the fields it changes; later stamps win field by field. */
  patch?: SpecPatch
}

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
export interface JobView extends JobRunOptions {
  id: JobId
  name?: string
  cmd: string[]
  cwd: string
  group?: string
  after: JobId[]
  afterGroup: string[]
  afterAny?: JobId[]
  afterGroupAny?: string[]
  pri: number
  retries: number
  ttrMs: number
  timeoutMs?: number
  tags: string[]
  cores: number
  env: Record<string, string>
  key?: string
  out?: string
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
  /** A task of an array: the array's id and the task's index. */
  arrayId?: JobId
  arrayIndex?: number
}

export interface ArrayView {
  first: number
  last: number
  step: number
  limit?: number
  tasks: number
  states: Record<JobState, number>
}

/** One job's state, as `POST /v1/jobs/states` answers it (`meshq status`). */
export interface JobStateView {
  id: JobId
  state: JobState
}

export interface AttemptView {
  epoch: number
  node: PeerIdString
  claimedAt: string
  startedAt?: string
  endedAt?: string
  exitCode?: number
  signal?: string
  failReason?: FailReason
  lost?: boolean
  /** Won by a node cut off from every member (see Attempt). */
  alone?: boolean
  /**
   * The node could not put the run in a cgroup (see docs/guarantees.md): processes that left its
   * process group (setsid) were not killed with it.
   */
  uncontained?: boolean
  stdoutBytes?: number
  stderrBytes?: number
  truncated?: boolean
  tail?: string
  peakRssKb?: number
  cpuMs?: number
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

export interface PeerView {
  id: PeerIdString
  addrs: string[]
  self: boolean
  connected: boolean
  state: 'up' | 'draining' | 'unreachable'
  slots: number
  running: number
  tags: string[]
  /** Bytes of memory free there for jobs' `--mem`, as it last said (absent from nodes of protocol 2.0). */
  memFree?: number
}

/** An invite as `meshq invite --list` shows it (the secret is only ever in the token). */
export interface InviteView {
  id: string
  by: string
  createdAt: string
  expiresAt: string
  uses: number
  used: number
  revoked: boolean
  expired: boolean
}

/** The longest an invite may stay valid: 365 days. */
export const MAX_INVITE_TTL_MS = 365 * 24 * 60 * 60 * 1000

export interface InviteCreated {
  id: string
  token: string
  expiresAt: string
}

export interface StatsView {
  states: Record<JobState, number>
  groups: Record<string, Partial<Record<JobState, number>>>
  /** Jobs finished per second over the last minute. */
  throughput: number
  nodes: Array<{ id: PeerIdString, slots: number, running: number }>
  /** What this node's claims cost since it started: gossip batches and the entries in them. */
  coordination: CoordinationStats
}

/** Counters of a node's claim traffic since it started (`meshq stats --json`, the benchmarks). */
export interface CoordinationStats {
  /** Claim batches published. */
  batches: number
  claims: number
  claimsWon: number
  claimsLost: number
  votes: number
  renewals: number
  acks: number
}

export interface NodeStatus {
  id: PeerIdString
  clusterId: string
  home: string
  slots: number
  running: number
  draining: boolean
  tags: string[]
  version: string
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
