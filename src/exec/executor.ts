/**
 * The executor: runs job attempts as real processes, each in its own process group, captures their
 * output and reports how they ended. See `watchdog.ts` for how jobs die with the node.
 */
import { stat } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { InvalidJobError } from '../errors.js'
import { FailReason } from '../types.js'
import { ExecutorNotRunningError } from './errors.js'
import { RunningJob, spawnJob, type JobContext } from './job.js'
import { log } from './log.js'
import { JobOutputs, type OutputPaths } from './output.js'
import { UsageSampler } from './sampler.js'
import { Watchdog } from './watchdog.js'

export { killLeftover } from './proc.js'

export interface ExecutorInit {
  /** Node home; output goes to `${home}/output/<jobId>/<epoch>.{stdout,stderr}`. */
  home: string
  /** Cap per stream: the first and the last half are kept. Default 64 MiB. */
  maxStreamBytes?: number
  /** SIGTERM -> SIGKILL grace. Default 10 s. */
  killGraceMs?: number
  /** `/proc` sampling period. Default 1 s. */
  sampleIntervalMs?: number
}

export interface RunRequest {
  jobId: string
  epoch: number
  cmd: string[]
  cwd: string
  env: Record<string, string>
  timeoutMs?: number
  /** Also append all output (stdout and stderr as seen, capped) to this path, relative to `cwd`. */
  out?: string
  /** Kill the job if the node goes silent (paused, stalled) this long: self-fencing of its lease. */
  fenceMs?: number
}

export interface RunHandle {
  /** The leader's pid, which is also its process group id; 0 when the job never spawned. */
  readonly pid: number
  /** Field 22 of `/proc/<pid>/stat`, to recognise the process later (pid reuse); '' when never spawned. */
  readonly startTime: string
  /** Never rejects. */
  readonly result: Promise<RunResult>
  /** SIGTERM to the group, SIGKILL after the grace period. */
  kill: (reason: 'killed' | 'lost') => void
  outputPaths: OutputPaths
}

export interface RunResult {
  startedAt: number
  endedAt: number
  exitCode?: number
  signal?: string
  failReason?: FailReason
  /** Bytes the process wrote, including omitted ones. */
  stdoutBytes: number
  stderrBytes: number
  truncated: boolean
  /** Last ~10 lines (<= 2 KB) of stdout and stderr interleaved as seen, or why the job could not start. */
  tail: string
  peakRssKb?: number
  cpuMs?: number
}

export interface Executor {
  start: () => Promise<void>
  /** Kills all running jobs (failReason `lost`) and waits for them, then stops the watchdog. */
  stop: () => Promise<void>
  /**
   * Resolves once the process is spawned, or with a handle whose result is an immediate failure
   * (cwd-missing, command-not-found, not-executable, spawn-error).
   */
  run: (req: RunRequest) => Promise<RunHandle>
  running: () => number
}

const SPAWN_FAILURES: Partial<Record<string, FailReason>> = {
  ENOENT: FailReason.commandNotFound,
  EACCES: FailReason.notExecutable
}

export function executor (init: ExecutorInit): Executor {
  return new ProcessExecutor(init)
}

class ProcessExecutor implements Executor {
  readonly #home: string
  readonly #maxStreamBytes: number
  readonly #killGraceMs: number
  readonly #sampler: UsageSampler
  readonly #jobs = new Map<number, RunningJob>()
  #watchdog?: Watchdog
  #stopped?: Promise<void>

  constructor (init: ExecutorInit) {
    this.#home = init.home
    this.#maxStreamBytes = init.maxStreamBytes ?? 64 * 1024 * 1024
    this.#killGraceMs = init.killGraceMs ?? 10_000
    if (!Number.isSafeInteger(this.#killGraceMs) || this.#killGraceMs < 0) throw new RangeError(`bad killGraceMs: ${this.#killGraceMs}`)
    this.#sampler = new UsageSampler(init.sampleIntervalMs ?? 1000)
  }

  async start (): Promise<void> {
    if (this.#stopped !== undefined) throw new ExecutorNotRunningError('the executor was stopped')
    if (this.#watchdog !== undefined) return
    this.#watchdog = new Watchdog()
    this.#sampler.start()
  }

  async stop (): Promise<void> {
    this.#stopped ??= this.#shutdown()
    await this.#stopped
  }

  running (): number {
    return this.#jobs.size
  }

  async run (req: RunRequest): Promise<RunHandle> {
    this.#jobContext() // throws unless running
    validate(req)
    const startedAt = Date.now()
    const outputPaths = outputPathsOf(this.#home, req)
    const fail = (reason: FailReason, message: string): RunHandle => failedRun(outputPaths, startedAt, reason, message)
    if (!await isDirectory(req.cwd)) return fail(FailReason.cwdMissing, `no such directory: ${req.cwd}`)
    let outputs: JobOutputs
    try {
      outputs = await JobOutputs.open(outputPaths, req.out === undefined ? undefined : resolve(req.cwd, req.out), this.#maxStreamBytes)
    } catch (err) {
      return fail(FailReason.spawnError, `cannot open the output files: ${(err as Error).message}`)
    }
    return await this.#spawn(req, outputs, outputPaths, fail)
  }

  async #spawn (req: RunRequest, outputs: JobOutputs, outputPaths: OutputPaths, fail: (reason: FailReason, message: string) => RunHandle): Promise<RunHandle> {
    let context: JobContext
    try {
      context = this.#jobContext() // the executor may have been stopped while we opened the files
    } catch (err) {
      await outputs.close()
      throw err
    }
    const child = spawnJob(req, this.#killGraceMs)
    if (child.pid === undefined) {
      await outputs.close()
      const { code, originalMessage } = await child
      return fail(SPAWN_FAILURES[code ?? ''] ?? FailReason.spawnError, `${req.cmd[0]}: ${String(originalMessage)}`)
    }
    const job = new RunningJob({ child, pid: child.pid, req, outputs, outputPaths, context })
    this.#jobs.set(job.pid, job)
    void job.result.then(() => this.#jobs.delete(job.pid))
    return job
  }

  /** What a job needs from the executor; throws unless started and not stopped. */
  #jobContext (): JobContext {
    if (this.#watchdog === undefined || this.#stopped !== undefined) {
      throw new ExecutorNotRunningError('the executor is not running')
    }
    return { watchdog: this.#watchdog, sampler: this.#sampler, killGraceMs: this.#killGraceMs }
  }

  async #shutdown (): Promise<void> {
    const jobs = [...this.#jobs.values()]
    log('stopping: killing %d jobs', jobs.length)
    for (const job of jobs) job.kill(FailReason.lost)
    await Promise.all(jobs.map(async job => await job.result))
    this.#sampler.stop()
    await this.#watchdog?.close()
  }
}

function validate (req: RunRequest): void {
  if (req.cmd.length === 0) throw new InvalidJobError('empty command')
  if (basename(req.jobId) !== req.jobId || ['', '.', '..'].includes(req.jobId)) throw new InvalidJobError(`unsafe job id: ${req.jobId}`)
}

function outputPathsOf (home: string, { jobId, epoch }: RunRequest): OutputPaths {
  const base = join(home, 'output', jobId, String(epoch))
  return { stdout: `${base}.stdout`, stderr: `${base}.stderr` }
}

async function isDirectory (path: string): Promise<boolean> {
  return await stat(path).then(stats => stats.isDirectory(), () => false)
}

/** A handle for a job that could not start; its result is ready. */
function failedRun (outputPaths: OutputPaths, startedAt: number, failReason: FailReason, message: string): RunHandle {
  log('job could not start (%s): %s', failReason, message)
  const result: RunResult = { startedAt, endedAt: Date.now(), failReason, stdoutBytes: 0, stderrBytes: 0, truncated: false, tail: `meshq: ${message}` }
  return { pid: 0, startTime: '', outputPaths, result: Promise.resolve(result), kill: () => {} }
}
