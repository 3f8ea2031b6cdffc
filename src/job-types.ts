/**
 * The job model: ids, states and failure reasons, and the facts the ledger holds about a job (its
 * spec, its attempts, the controls about it). Dependency-free, as every module imports it.
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
/** What an attempt's record tells beyond its outcome: how it ran and what it used. */
export type AttemptReading = 'alone' | 'uncontained' | 'stdoutBytes' | 'stderrBytes' | 'truncated' | 'tail' | 'peakRssKb' | 'cpuMs'

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
