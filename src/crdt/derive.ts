import { FailReason, JobState, isTerminal } from '../types.js'
import type { Attempt, Control, JobId, JobSpec } from '../types.js'
import { ControlKind } from '../types.js'
import { compareStamps, latest } from './facts.js'
import type { JobFacts } from './facts.js'

/** What the derivation needs to know beyond the job's own facts. */
export interface DeriveContext {
  /** Wall-clock ms now. */
  now: number
  /** State of another job; undefined when this replica does not know it (yet). */
  jobState: (id: JobId) => JobState | undefined
  /** Whether a failed job failed only because a job it waits for did (`dependency-failed`). */
  inheritedFailure: (id: JobId) => boolean
  /** Whether job `a` was submitted before job `b`, in the order every replica agrees on (submit time, sequence, id). */
  submittedBefore: (a: JobId, b: JobId) => boolean
  /** Whether every job of the group succeeded, or which one failed. */
  groupState: (group: string) => GroupProgress
  /** The active pause of a group, if any. */
  pause: (group: string) => { until?: number } | undefined
  /** Whether this replica still believes an open attempt's lease is held. */
  leaseAlive: (attempt: Attempt) => boolean
}

export interface GroupProgress {
  total: number
  done: number
  /** Jobs of the group that have ended: done, failed or killed. */
  ended: number
  /** A job of the group that failed or was killed (by its own attempts or a kill). */
  failed?: JobId
  /** The earliest submitted job of the group that failed only because of a dependency. */
  inherited?: JobId
}

/** The reason of a job that can never run because a job it waits for failed or was killed. */
export const DEPENDENCY_FAILED = 'dependency-failed'

export interface Derived {
  state: JobState
  removed: boolean
  reason?: string
  /** Wall-clock ms when a time-based wait ends (delay, backoff, pause expiry). */
  wakeAt?: number
  /** The attempt that decides the state: the running one, the one that succeeded, or the latest. */
  attempt?: Attempt
  /** The Lamport stamp a new control or attempt for this job must exceed. */
  lamport: number
  /** The highest epoch claimed so far. */
  epoch: number
  /** A running job whose kill was requested: its holder must stop it. */
  killRequested?: boolean
  /** Failed only because a job it waits for failed or was killed (`dependency-failed`). */
  inheritedFailure?: true
}

export const RETRY_BACKOFF_BASE_MS = 1000
export const RETRY_BACKOFF_MAX_MS = 10 * 60_000

export function retryBackoffMs (failures: number): number {
  return Math.min(RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1))
}

const succeeded = (a: Attempt): boolean => a.endedAt != null && a.exitCode === 0 && a.failReason == null

/** The spec as `mod` requests left it: patches applied in stamp order (a later one wins field by field). */
export function effectiveSpec (submitted: JobSpec, controls: Iterable<Control>): JobSpec {
  const patches = [...controls].filter(c => c.kind === ControlKind.modify && c.patch != null).sort(compareStamps)
  return patches.length === 0 ? submitted : Object.assign({ ...submitted }, ...patches.map(c => c.patch))
}

/**
 * The state of a job: a pure function of its facts and the context. Replicas holding the same
 * facts and context derive the same state, whatever order the facts arrived in.
 */
export function deriveJob (facts: JobFacts, ctx: DeriveContext): Derived {
  const attempts = [...facts.attempts.values()].filter(a => a.withdrawn !== true).sort(byEpoch)
  const controls = [...facts.controls.values()]
  const lamport = Math.max(0, ...controls.map(c => c.lamport), ...attempts.map(a => a.basis))
  const epoch = Math.max(0, ...attempts.map(a => a.epoch))
  const base = { removed: false, lamport, epoch }

  const removal = latest(controls, c => c.kind === ControlKind.remove)
  const success = attempts.find(succeeded)
  if (success != null) return { ...base, removed: removal != null, state: JobState.done, attempt: success }

  const running = attempts.find(a => a.endedAt == null && ctx.leaseAlive(a))
  if (running != null) {
    const killRequested = lastKillAfterRetry(controls) != null || removal != null
    return { ...base, state: JobState.running, attempt: running, killRequested, reason: killRequested ? 'kill requested' : undefined }
  }
  if (removal != null) return { ...base, removed: true, state: JobState.killed, reason: 'removed' }

  const last = attempts.at(-1)
  if (lastKillAfterRetry(controls) != null) return { ...base, state: JobState.killed, attempt: last, reason: 'killed by request' }

  const round = latest(controls, c => c.kind === ControlKind.retry)?.lamport ?? 0
  const failures = attempts.filter(a => a.basis >= round && a.endedAt != null && a.failReason !== FailReason.lost)
  if (failures.length > facts.spec.retries) {
    return { ...base, state: JobState.failed, attempt: failures.at(-1), reason: failureReason(failures.at(-1)) }
  }
  const blocked = dependencyFailure(facts.spec, ctx)
  if (blocked != null) return { ...base, state: JobState.failed, attempt: last, reason: blocked, inheritedFailure: true }
  return { ...base, attempt: last, ...waiting(facts, failures, ctx) }
}

function byEpoch (a: Attempt, b: Attempt): number {
  return a.epoch - b.epoch || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)
}

/** The latest kill, if no retry came after it. */
function lastKillAfterRetry (controls: Control[]): Control | undefined {
  const kill = latest(controls, c => c.kind === ControlKind.kill)
  const retry = latest(controls, c => c.kind === ControlKind.retry)
  return kill != null && (retry == null || compareStamps(kill, retry) > 0) ? kill : undefined
}

function failureReason (attempt: Attempt | undefined): string | undefined {
  if (attempt == null) return undefined
  if (attempt.failReason === FailReason.nonZeroExit) return `exit code ${attempt.exitCode ?? '?'}`
  return attempt.failReason ?? undefined
}

/**
 * `after` and `after-group` wait for success: a dependency that failed or was killed fails the job.
 * This is derived, so a `retry` of the dependency brings the job back to pending.
 *
 * A dependency that itself failed only because of its own dependencies passes that on only to jobs
 * submitted after it. Submit order has no cycles, so every failure traces back to a real one and
 * replicas agree whatever order facts arrive in; jobs of a dependency cycle (which submit refuses,
 * but concurrent submits on two nodes could make) stay pending rather than fail each other.
 */
function dependencyFailure (spec: JobSpec, ctx: DeriveContext): string | undefined {
  const passesOn = (dep: JobId): boolean => !ctx.inheritedFailure(dep) || ctx.submittedBefore(dep, spec.id)
  for (const dep of spec.after) {
    const state = ctx.jobState(dep)
    if ((state === JobState.failed || state === JobState.killed) && passesOn(dep)) return `${DEPENDENCY_FAILED}: job ${dep} ${state}`
  }
  for (const group of spec.afterGroup) {
    const { failed, inherited } = ctx.groupState(group)
    const culprit = failed ?? (inherited != null && passesOn(inherited) ? inherited : undefined)
    if (culprit != null) return `${DEPENDENCY_FAILED}: job ${culprit} of group ${group} ${ctx.jobState(culprit) ?? JobState.failed}`
  }
  return undefined
}

/** A job that may run: why it is pending, or ready. */
function waiting (facts: JobFacts, failures: Attempt[], ctx: DeriveContext): Pick<Derived, 'state' | 'reason' | 'wakeAt'> {
  const { spec } = facts
  const pending = (reason: string, wakeAt?: number): Pick<Derived, 'state' | 'reason' | 'wakeAt'> =>
    ({ state: JobState.pending, reason, wakeAt })

  for (const dep of spec.after) {
    const state = ctx.jobState(dep)
    if (state === undefined) return pending(`waiting for job ${dep} (not known here yet)`)
    if (state !== JobState.done) return pending(`waiting for job ${dep}`)
  }
  for (const dep of spec.afterAny ?? []) {
    const state = ctx.jobState(dep)
    if (state === undefined) return pending(`waiting for job ${dep} (not known here yet)`)
    if (!isTerminal(state)) return pending(`waiting for job ${dep} to end`)
  }
  for (const group of spec.afterGroup) {
    const progress = ctx.groupState(group)
    if (progress.total === 0) return pending(`waiting for group ${group} (no jobs yet)`)
    if (progress.done < progress.total) return pending(`waiting for group ${group} (${progress.done}/${progress.total} done)`)
  }
  for (const group of spec.afterGroupAny ?? []) {
    const progress = ctx.groupState(group)
    if (progress.total === 0) return pending(`waiting for group ${group} (no jobs yet)`)
    if (progress.ended < progress.total) return pending(`waiting for group ${group} to end (${progress.ended}/${progress.total} ended)`)
  }
  if (spec.notBefore != null && spec.notBefore > ctx.now) {
    return pending(`delayed until ${new Date(spec.notBefore).toISOString()}`, spec.notBefore)
  }
  const lastFailure = failures.at(-1)
  if (lastFailure?.endedAt != null) {
    const retryAt = lastFailure.endedAt + retryBackoffMs(failures.length)
    const until = new Date(retryAt).toISOString()
    if (retryAt > ctx.now) return pending(`retry ${failures.length}/${spec.retries} after backoff until ${until}`, retryAt)
  }
  if (spec.group != null) {
    const pause = ctx.pause(spec.group)
    if (pause != null) {
      return pause.until != null
        ? pending(`group ${spec.group} paused until ${new Date(pause.until).toISOString()}`, pause.until)
        : pending(`group ${spec.group} paused`)
    }
  }
  return { state: JobState.ready, reason: undefined, wakeAt: undefined }
}
