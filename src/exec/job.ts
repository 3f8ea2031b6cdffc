/**
 * One running job attempt: its process group and cgroup, its kill and timeout, and the assembly of
 * its result.
 */
import { FailReason, type JobState } from '../types.js'
import type { JobCgroup } from './cgroup.js'
import type { RunHandle, RunRequest, RunResult, WrapUp } from './executor.js'
import { log } from './log.js'
import type { OutputPaths } from './output-files.js'
import { signalGroup } from './proc.js'
import type { Usage, UsageSampler } from './sampler.js'
import type { SpawnedJob } from './spawner/client.js'
import type { Watchdog } from './watchdog.js'

/** Why we terminated a job ourselves. */
type Termination = typeof FailReason.killed | typeof FailReason.lost | typeof FailReason.timedOut | typeof FailReason.memory

export interface JobContext {
  watchdog: Watchdog
  sampler: UsageSampler
  killGraceMs: number
  hookTimeoutMs: number
}

interface JobInit {
  child: SpawnedJob
  /** The cgroup the job was born in; without one, only its process group is contained. */
  cgroup?: JobCgroup
  req: RunRequest
  outputPaths: OutputPaths
  context: JobContext
  /** What to do once the attempt is recorded (hooks, the private directory). */
  wrapUp: WrapUp
}

/** Longer delays overflow Node's timers (which then fire at once); such a timeout is never reached. */
const MAX_TIMER_MS = 2 ** 31 - 1

interface LeaderExit {
  endedAt: number
  usage: Usage
}

export class RunningJob implements RunHandle {
  /** The group leader's pid, which is also the group id. */
  readonly pid: number
  readonly startTime: string
  readonly startedAt: number
  readonly result: Promise<RunResult>
  readonly outputPaths: OutputPaths
  readonly uncontained?: true
  readonly #child: SpawnedJob
  readonly #cgroup?: JobCgroup
  readonly #context: JobContext
  readonly #wrapUp: WrapUp
  #termination?: Termination
  #exited = false
  #timeout?: NodeJS.Timeout
  /** SIGKILL for a group that outlives its SIGTERM by the grace period. */
  #forceKill?: NodeJS.Timeout
  /** When the job started (performance.now()): a silence of the node after it fenced the job. */
  readonly #since = performance.now()

  constructor ({ child, cgroup, req, outputPaths, context, wrapUp }: JobInit) {
    // the spawner's time, not ours: a short job may have ended there before its message reached us
    const startedAt = this.startedAt = child.startedAt
    this.#child = child
    this.#cgroup = cgroup
    if (cgroup === undefined) this.uncontained = true
    this.#context = context
    this.#wrapUp = wrapUp
    this.pid = child.pid
    this.outputPaths = outputPaths
    this.startTime = child.stat?.startTime ?? ''
    context.watchdog.add(this.pid, req.fenceMs, cgroup?.name)
    context.sampler.track(this.pid, child.stat, req.memBytes === undefined ? undefined : {
      kb: Math.floor(req.memBytes / 1024),
      exceeded: rssKb => {
        log('group %d uses %d KiB, more than its limit of %d bytes', this.pid, rssKb, req.memBytes)
        this.#terminate(FailReason.memory)
      }
    })
    if (req.timeoutMs !== undefined && req.timeoutMs <= MAX_TIMER_MS) {
      this.#timeout = setTimeout(() => { this.#terminate(FailReason.timedOut) }, req.timeoutMs)
    }
    log('job %s/%d started: pid %d %o', req.jobId, req.epoch, this.pid, req.cmd)
    this.result = this.#supervise(startedAt)
  }

  kill (reason: 'killed' | 'lost'): void {
    this.#terminate(reason)
  }

  async wrapUp (jobState?: JobState): Promise<void> {
    await this.#wrapUp(this.result, jobState)
  }

  #terminate (termination: Termination): void {
    if (this.#termination !== undefined || this.#exited) return
    this.#termination = termination
    log('terminating group %d (%s)', this.pid, termination)
    signalGroup(this.pid, 'SIGTERM')
    this.#forceKill = setTimeout(() => { signalGroup(this.pid, 'SIGKILL') }, this.#context.killGraceMs)
  }

  async #supervise (startedAt: number): Promise<RunResult> {
    const [outcome, { endedAt, usage }] = await Promise.all([this.#child.done, this.#leaderExit()])
    // the spawner's death took the job's output with it: the node's loss, not the job's failure
    const failReason = outcome.spawnerDied === true ? FailReason.lost : this.#failReason(outcome)
    log('group %d ended: exit %s, signal %s, %s', this.pid, outcome.exitCode, outcome.signal, failReason ?? 'ok')
    return { startedAt, endedAt, exitCode: outcome.exitCode, signal: outcome.signal, failReason, ...outcome.summary, ...usage }
  }

  /**
   * When the leader exits, what is left of its tree is killed: a job's processes must not outlive it
   * (and would keep its output pipes open). Without a cgroup only its group can be killed, and the
   * spawner cuts off a process that left the group but still holds a pipe after the grace period.
   */
  async #leaderExit (): Promise<LeaderExit> {
    const endedAt = await this.#child.exited
    this.#exited = true
    clearTimeout(this.#timeout)
    clearTimeout(this.#forceKill)
    const usage = await this.#context.sampler.release(this.pid)
    signalGroup(this.pid, 'SIGKILL')
    this.#cgroup?.kill()
    this.#context.watchdog.remove(this.pid)
    void this.#cgroup?.remove()
    return { endedAt, usage }
  }

  #failReason (outcome: { exitCode?: number, signal?: string }): FailReason | undefined {
    if (this.#finishedFirst(outcome)) return undefined
    return this.#termination ?? (this.#fenced(outcome.signal) ? FailReason.lost : failureOf(outcome))
  }

  /**
   * Whether the job succeeded before a fence or preemption could stop it: it exited 0 on its own,
   * though the node (busy, stalled) had asked it to stop. A finished attempt's result counts.
   */
  #finishedFirst ({ exitCode, signal }: { exitCode?: number, signal?: string }): boolean {
    return this.#termination === FailReason.lost && exitCode === 0 && signal === undefined
  }

  /** Whether the job died because the watchdog fenced it (the node was paused or stalled): lost, not failed. */
  #fenced (signal: string | undefined): boolean {
    return signal === 'SIGKILL' && this.#context.watchdog.silentSince(this.#since)
  }
}

function failureOf ({ exitCode, signal }: { exitCode?: number, signal?: string }): FailReason | undefined {
  if (signal !== undefined) return FailReason.signaled
  if (exitCode === undefined) return FailReason.spawnError
  return exitCode === 0 ? undefined : FailReason.nonZeroExit
}
