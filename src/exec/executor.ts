/**
 * The executor: runs job attempts as real processes, each in its own process group and, where the
 * node can make cgroups, its own cgroup (`cgroup.ts`), and reports how they ended. A small spawner
 * process (`spawner/`) starts them and captures their output; the node watches, signals and times
 * them. See `watchdog.ts` for how jobs die with the node.
 */
import { mkdtemp, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { InvalidJobError } from '../errors.js'
import { FailReason, type JobRunOptions, type JobState } from '../types.js'
import { HOOK_TIMEOUT_MS, wrapUp, type AftermathInit } from './aftermath.js'
import { NodeCgroup } from './cgroup.js'
import { ContainmentError, ExecutorNotRunningError } from './errors.js'
import { RunningJob, type JobContext } from './job.js'
import { log } from './log.js'
import { OutputFiles, type OutputPaths } from './output-files.js'
import { UsageSampler } from './sampler.js'
import { Spawner } from './spawner/client.js'
import type { SpawnFailed } from './spawner/protocol.js'
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
  /** Hooks running longer are killed. Default `HOOK_TIMEOUT_MS` (60 s). */
  hookTimeoutMs?: number
  /** Put each job in a cgroup of its own, so that its whole process tree dies with it. Default true. */
  cgroups?: boolean
}

/** How the executor contains its jobs: in cgroups under `cgroup`, or by process group only, and why. */
export type Containment = { cgroup: string } | { uncontained: string }

/** The job's hooks, private directory and memory limit come with the request (docs/jobs.md). */
export interface RunRequest extends JobRunOptions {
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
  /** This node's peer id, for the hooks (MESHQ_NODE). */
  node?: string
}

export interface RunHandle {
  /** The leader's pid, which is also its process group id; 0 when the job never spawned. */
  readonly pid: number
  /** Field 22 of `/proc/<pid>/stat`, to recognise the process later (pid reuse); '' when never spawned. */
  readonly startTime: string
  /** When the process was spawned (wall-clock ms), or when it failed to be; `result.startedAt` is the same. */
  readonly startedAt: number
  /** Never rejects. */
  readonly result: Promise<RunResult>
  /** SIGTERM to the group, SIGKILL after the grace period. */
  kill: (reason: 'killed' | 'lost') => void
  /** The job has no cgroup: processes that leave its process group are not killed with it. */
  readonly uncontained?: true
  outputPaths: OutputPaths
  /**
   * Call once the attempt's end is recorded, with the job's state that follows from it: runs the
   * hooks that apply, then removes the private directory if its policy says so. Never rejects.
   */
  wrapUp: (jobState?: JobState) => Promise<void>
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
  /** Known once started. */
  containment: () => Containment
}

/** An attempt's hooks and private directory removal, once its end is recorded. */
export type WrapUp = (result: Promise<RunResult>, jobState?: JobState) => Promise<void>

const SPAWN_FAILURES: Partial<Record<string, FailReason>> = {
  ENOENT: FailReason.commandNotFound,
  EACCES: FailReason.notExecutable
}

/** Errors of the node, not of the job: out of file descriptors here or system-wide. */
const NODE_RESOURCE_ERRORS = new Set(['EMFILE', 'ENFILE'])

/**
 * Why a job could not start: `lost` when the node ran out of file descriptors (the attempt runs
 * again, perhaps elsewhere), else `spawn-error`, the job's own failure.
 */
function spawnFailure (err: unknown): FailReason {
  return NODE_RESOURCE_ERRORS.has((err as { code?: string } | null)?.code ?? '') ? FailReason.lost : FailReason.spawnError
}

/** Why a job the spawner could not start failed, and the message its record shows. */
function spawnFailureOf ({ stage, code, message }: SpawnFailed, program: string): [FailReason, string] {
  switch (stage) {
    case 'outputs': return [spawnFailure({ code }), `cannot open the output files: ${message}`]
    case 'refused': return [spawnFailure({ code }), `${program}: ${message}`]
    case 'spawn': return [SPAWN_FAILURES[code ?? ''] ?? spawnFailure({ code }), `${program}: ${message}`]
    case 'spawner': return [FailReason.lost, `cannot start the job: ${message}`]
  }
}

export function executor (init: ExecutorInit): Executor {
  return new ProcessExecutor(init)
}

class ProcessExecutor implements Executor {
  readonly #home: string
  readonly #outputs: OutputFiles
  readonly #maxStreamBytes: number
  readonly #killGraceMs: number
  readonly #hookTimeoutMs: number
  readonly #sampler: UsageSampler
  readonly #cgroups: boolean
  readonly #jobs = new Map<number, RunningJob>()
  /** Hooks and removals under way: a stopping executor lets them finish (hooks have a timeout). */
  readonly #wrapUps = new Set<Promise<void>>()
  readonly #spawner = new Spawner()
  #watchdog?: Watchdog
  #cgroup?: NodeCgroup
  #uncontained = 'the executor has not started'
  #stopped?: Promise<void>

  constructor (init: ExecutorInit) {
    this.#home = init.home
    this.#outputs = new OutputFiles(init.home)
    this.#maxStreamBytes = init.maxStreamBytes ?? 64 * 1024 * 1024
    this.#killGraceMs = init.killGraceMs ?? 10_000
    if (!Number.isSafeInteger(this.#killGraceMs) || this.#killGraceMs < 0) throw new RangeError(`bad killGraceMs: ${this.#killGraceMs}`)
    this.#hookTimeoutMs = init.hookTimeoutMs ?? HOOK_TIMEOUT_MS
    this.#sampler = new UsageSampler(init.sampleIntervalMs ?? 1000)
    this.#cgroups = init.cgroups ?? true
  }

  async start (): Promise<void> {
    if (this.#stopped !== undefined) throw new ExecutorNotRunningError('the executor was stopped')
    if (this.#watchdog !== undefined) return
    this.#cgroup = this.#openCgroup()
    this.#watchdog = new Watchdog(this.#cgroup?.dir)
    this.#sampler.start()
    this.#spawner.start()
  }

  #openCgroup (): NodeCgroup | undefined {
    if (!this.#cgroups) {
      this.#uncontained = 'cgroups are turned off'
      return undefined
    }
    try {
      return NodeCgroup.open()
    } catch (err) {
      if (!(err instanceof ContainmentError)) throw err
      this.#uncontained = err.message
      log('jobs are contained by process group only: %s', err.message)
      return undefined
    }
  }

  containment (): Containment {
    return this.#cgroup === undefined ? { uncontained: this.#uncontained } : { cgroup: this.#cgroup.dir }
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
    const outputPaths = this.#outputs.paths(req.jobId, req.epoch) // throws for a job id that is not a safe file name
    const aftermath: AftermathInit = { home: this.#home, req, outputPaths, hookLog: this.#outputs.hookLog(req.jobId, req.epoch) }
    const finish: WrapUp = async (result, jobState) => { await this.#wrapUp(aftermath, result, jobState) }
    const fail = (reason: FailReason, message: string): RunHandle => failedRun(outputPaths, startedAt, reason, message, finish)
    if (!await isDirectory(req.cwd)) return fail(FailReason.cwdMissing, `no such directory: ${req.cwd}`)
    if (req.tmpdir === true) {
      try {
        // a fresh name no other user can guess and plant first; mkdtemp makes it 0700
        aftermath.privateDir = await mkdtemp(join(req.cwd, `.meshq-${req.jobId}-${req.epoch}-`))
      } catch (err) {
        return fail(spawnFailure(err), `cannot create the private directory: ${(err as Error).message}`)
      }
    }
    return await this.#spawn(req, aftermath, finish, fail)
  }

  async #spawn (
    req: RunRequest, aftermath: AftermathInit, finish: WrapUp, fail: (reason: FailReason, message: string) => RunHandle
  ): Promise<RunHandle> {
    const context = this.#jobContext() // the executor may have been stopped while we made the private directory
    const { privateDir, outputPaths } = aftermath
    const run = privateDir === undefined ? req : inPrivateDir(req, privateDir)
    const cgroup = this.#cgroup?.newJob()
    const spawned = await this.#spawner.spawn({
      cmd: run.cmd,
      cwd: run.cwd,
      env: { ...run.env, MESHQ_JOB_ID: req.jobId, MESHQ_ATTEMPT: String(req.epoch) },
      outputs: { paths: outputPaths, out: req.out === undefined ? undefined : resolve(req.cwd, req.out), capBytes: this.#maxStreamBytes },
      cgroup: cgroup === undefined || this.#cgroup === undefined ? undefined : { dir: cgroup.dir, home: this.#cgroup.home },
      drainMs: this.#killGraceMs
    }).catch((err: Error): SpawnFailed => ({ type: 'failed', id: 0, stage: 'spawner', message: err.message }))
    if (spawned.type === 'failed' || !spawned.contained) void cgroup?.remove()
    if (spawned.type === 'failed') return fail(...spawnFailureOf(spawned, req.cmd[0]))
    const job = new RunningJob({
      child: spawned, cgroup: spawned.contained ? cgroup : undefined, req, outputPaths, context, wrapUp: finish
    })
    this.#jobs.set(job.pid, job)
    void job.result.then(() => this.#jobs.delete(job.pid))
    if (this.#stopped !== undefined) job.kill(FailReason.lost) // started while the executor was stopping
    return job
  }

  /** What a job needs from the executor; throws unless started and not stopped. */
  #jobContext (): JobContext {
    if (this.#watchdog === undefined || this.#stopped !== undefined) {
      throw new ExecutorNotRunningError('the executor is not running')
    }
    return { watchdog: this.#watchdog, sampler: this.#sampler, killGraceMs: this.#killGraceMs, hookTimeoutMs: this.#hookTimeoutMs }
  }

  /** Runs an attempt's aftermath unless the executor was stopped before this call; never rejects. */
  async #wrapUp (init: AftermathInit, result: Promise<RunResult>, jobState?: JobState): Promise<void> {
    let context: JobContext
    try {
      context = this.#jobContext()
    } catch {
      log('not running the hooks of %s/%d: the executor is stopped', init.req.jobId, init.req.epoch)
      return
    }
    const done = result
      .then(async ended => { await wrapUp(init, context, ended, jobState) })
      .catch(err => { log('wrap-up of %s/%d failed: %O', init.req.jobId, init.req.epoch, err) })
    this.#wrapUps.add(done)
    await done
    this.#wrapUps.delete(done)
  }

  async #shutdown (): Promise<void> {
    const jobs = [...this.#jobs.values()]
    log('stopping: killing %d jobs', jobs.length)
    for (const job of jobs) job.kill(FailReason.lost)
    await Promise.all(jobs.map(async job => await job.result))
    await Promise.all(this.#wrapUps)
    this.#sampler.stop()
    await this.#spawner.stop()
    await this.#watchdog?.close()
  }
}

/**
 * The request as run in its private directory, which is also its TMPDIR. A relative program path
 * (`./run.sh`) still names the file in the job's cwd, where the user saw it.
 */
function inPrivateDir (req: RunRequest, privateDir: string): RunRequest {
  const [program, ...args] = req.cmd
  const cmd = program.includes('/') ? [resolve(req.cwd, program), ...args] : req.cmd
  return { ...req, cmd, cwd: privateDir, env: { ...req.env, TMPDIR: privateDir } }
}

function validate (req: RunRequest): void {
  if (req.cmd.length === 0) throw new InvalidJobError('empty command')
}

async function isDirectory (path: string): Promise<boolean> {
  return await stat(path).then(stats => stats.isDirectory(), () => false)
}

/** A handle for a job that could not start; its result is ready. */
function failedRun (outputPaths: OutputPaths, startedAt: number, failReason: FailReason, message: string, wrapUp: WrapUp): RunHandle {
  log('job could not start (%s): %s', failReason, message)
  const result: RunResult = {
    startedAt, endedAt: Date.now(), failReason, stdoutBytes: 0, stderrBytes: 0, truncated: false, tail: `meshq: ${message}`
  }
  const ended = Promise.resolve(result)
  const finish = async (jobState?: JobState): Promise<void> => { await wrapUp(ended, jobState) }
  return { pid: 0, startTime: '', startedAt, outputPaths, result: ended, kill: () => {}, wrapUp: finish }
}
