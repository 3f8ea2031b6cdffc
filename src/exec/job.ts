/**
 * One running job attempt: its process group and cgroup, its kill and timeout, and the assembly of
 * its result.
 */
import { execa } from 'execa'
import { FailReason, type JobState } from '../types.js'
import type { JobCgroup } from './cgroup.js'
import type { RunHandle, RunRequest, RunResult, WrapUp } from './executor.js'
import { log } from './log.js'
import type { JobOutputs } from './output.js'
import type { OutputPaths } from './output-files.js'
import { readStatSync, signalGroup } from './proc.js'
import type { Usage, UsageSampler } from './sampler.js'
import type { Watchdog } from './watchdog.js'

/** Why we terminated a job ourselves. */
type Termination = typeof FailReason.killed | typeof FailReason.lost | typeof FailReason.timedOut | typeof FailReason.memory

export interface JobContext {
  watchdog: Watchdog
  sampler: UsageSampler
  killGraceMs: number
  hookTimeoutMs: number
}

/** Spawns the job as the leader of its own process group, without a shell. */
export function spawnJob (req: RunRequest, killGraceMs: number) {
  const [file, ...args] = req.cmd
  return execa(file, args, {
    cwd: req.cwd,
    env: { ...req.env, MESHQ_JOB_ID: req.jobId, MESHQ_ATTEMPT: String(req.epoch) },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    detached: true,
    cleanup: false,
    // Our SIGTERM goes to the whole group, and SIGKILL follows after the grace period.
    killDescendants: true,
    forceKillAfterDelay: killGraceMs
  })
}

export type JobProcess = ReturnType<typeof spawnJob>

interface JobInit {
  child: JobProcess
  /** The child's pid, known to be defined: the spawn succeeded. */
  pid: number
  /** The cgroup the job was born in; without one, only its process group is contained. */
  cgroup?: JobCgroup
  req: RunRequest
  outputs: JobOutputs
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
  readonly result: Promise<RunResult>
  readonly outputPaths: OutputPaths
  readonly uncontained?: true
  readonly #process: JobProcess
  readonly #cgroup?: JobCgroup
  readonly #context: JobContext
  readonly #wrapUp: WrapUp
  #termination?: Termination
  #exited = false
  #timeout?: NodeJS.Timeout
  #drainTimer?: NodeJS.Timeout
  /** When the job started (performance.now()): a silence of the node after it fenced the job. */
  readonly #since = performance.now()

  constructor ({ child, pid, cgroup, req, outputs, outputPaths, context, wrapUp }: JobInit) {
    const startedAt = Date.now()
    this.#process = child
    this.#cgroup = cgroup
    if (cgroup === undefined) this.uncontained = true
    this.#context = context
    this.#wrapUp = wrapUp
    this.pid = pid
    this.outputPaths = outputPaths
    // Read now, before the event loop gets a chance to reap the process and free its pid.
    const stat = readStatSync(this.pid)
    this.startTime = stat?.startTime ?? ''
    context.watchdog.add(this.pid, req.fenceMs, cgroup?.name)
    context.sampler.track(this.pid, stat, req.memBytes === undefined ? undefined : {
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
    this.result = this.#supervise(startedAt, outputs)
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
    this.#process.kill('SIGTERM')
  }

  async #supervise (startedAt: number, outputs: JobOutputs): Promise<RunResult> {
    const [outcome, { endedAt, usage }] = await Promise.all([
      this.#process,
      this.#leaderExit(),
      outputs.consume(this.#process.stdout, 'stdout'),
      outputs.consume(this.#process.stderr, 'stderr')
    ])
    clearTimeout(this.#drainTimer)
    const summary = await outputs.close()
    const failReason = this.#finishedFirst(outcome)
      ? undefined
      : this.#termination ?? (this.#fenced(outcome.signal) ? FailReason.lost : failureOf(outcome))
    log('group %d ended: exit %s, signal %s, %s', this.pid, outcome.exitCode, outcome.signal, failReason ?? 'ok')
    return { startedAt, endedAt, exitCode: outcome.exitCode, signal: outcome.signal, failReason, ...summary, ...usage }
  }

  /**
   * When the leader exits, what is left of its tree is killed: a job's processes must not outlive it
   * (and would keep its output pipes open). Without a cgroup only its group can be killed, and a
   * process that left the group but still holds a pipe is cut off after the grace period.
   */
  async #leaderExit (): Promise<LeaderExit> {
    await new Promise(resolve => this.#process.nodeChildProcess.once('exit', resolve))
    const endedAt = Date.now()
    this.#exited = true
    clearTimeout(this.#timeout)
    const usage = await this.#context.sampler.release(this.pid)
    signalGroup(this.pid, 'SIGKILL')
    this.#cgroup?.kill()
    this.#context.watchdog.remove(this.pid)
    void this.#cgroup?.remove()
    this.#drainTimer = setTimeout(() => { this.#abandonOutput() }, this.#context.killGraceMs)
    return { endedAt, usage }
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

  #abandonOutput (): void {
    log('group %d: output still held open by a process outside the job\'s reach; closing it', this.pid)
    this.#process.stdout.destroy()
    this.#process.stderr.destroy()
  }
}

function failureOf ({ exitCode, signal }: { exitCode?: number, signal?: string }): FailReason | undefined {
  if (signal !== undefined) return FailReason.signaled
  if (exitCode === undefined) return FailReason.spawnError
  return exitCode === 0 ? undefined : FailReason.nonZeroExit
}
