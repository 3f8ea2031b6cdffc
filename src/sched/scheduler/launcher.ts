import createDebug from 'debug'
import { StorageError } from '../../errors.js'
import { JobState } from '../../types.js'
import type { Attempt, JobSpec, PeerIdString } from '../../types.js'
import type { Clock } from '../../clock.js'
import type { Executor, RunResult } from '../../exec/executor.js'
import { runOptionsOf } from '../../jobs/draft.js'
import type { JobTable } from '../table.js'
import type { Claims } from '../claims.js'
import { watchdogFenceMs } from './fence.js'
import type { IntentLog } from './intent-log.js'
import type { Run, Runs } from './runs.js'

const log = createDebug('meshq:sched')

/** Looks at a finished attempt before it is recorded and may turn it into a failure (`sub --expand`: src/sched/expand.ts). */
export type AttemptSettler = (spec: JobSpec, result: RunResult, stdoutPath: string) => Promise<RunResult>

export interface LauncherInit {
  self: PeerIdString
  clock: Clock
  table: JobTable
  claims: Claims
  executor: Executor
  runs: Runs
  intents: IntentLog
  writeAttempt: (attempt: Attempt, sync: boolean) => Promise<void>
  settler: () => AttemptSettler | undefined
  /** The job was taken off the run queue to be claimed: its rank delay is over. */
  taken: (spec: JobSpec) => void
  /** A write to the store failed. */
  storageFailed: () => void
  /** A slot became free, or a run was given up or ended. */
  changed: () => void
}

/**
 * A run from its claim to its record: claims the job, writes the intent, starts the process,
 * records the attempt and its result, then releases the job and its slot.
 */
export class Launcher {
  constructor (private readonly init: LauncherInit) {}

  async launch (spec: JobSpec): Promise<void> {
    const { clock, table, self, claims } = this.init
    const derived = table.get(spec.id)?.derived
    if (derived == null) return
    const epoch = claims.nextEpoch(spec.id, derived.epoch)
    const run: Run = { spec, attempt: { job: spec.id, epoch, node: self, basis: derived.lamport, claimedAt: clock.now() } }
    this.init.runs.add(run)
    this.init.taken(spec)
    try {
      if (!await this.claim(run)) {
        this.release(spec)
        return
      }
      const result = await this.start(run)
      await this.finish(run, await this.settle(run, result))
    } catch (err) {
      log('run of %s failed to start or record: %s', spec.id, (err as Error).message)
      if (err instanceof StorageError) this.init.storageFailed()
      run.handle?.kill('lost')
      // Its end will not be recorded (not before a restart's recovery): announcing the release would
      // bar the job on the others until then. Unannounced, the lease lapses after its TTR there.
      run.recorded = false
      this.release(spec)
    }
  }

  /** Whether this node won the claim and the job still waits for this attempt. */
  private async claim (run: Run): Promise<boolean> {
    const { spec, attempt } = run
    const won = await this.init.claims.claim(spec.id, attempt.epoch, spec.ttrMs)
    const now = this.init.table.get(spec.id)?.derived
    return won && now?.state === JobState.ready && now.epoch < attempt.epoch
  }

  /** Writes the intent, spawns, records the start; resolves with the run's result once it ends. */
  private async start (run: Run): Promise<RunResult> {
    const { spec, attempt } = run
    const { claims, self, intents } = this.init
    await intents.begin(spec.id, attempt.epoch)
    const alone = claims.heldAlone(spec.id)
    const handle = run.handle = await this.init.executor.run({
      jobId: spec.id,
      epoch: attempt.epoch,
      cmd: spec.cmd,
      cwd: spec.cwd,
      env: jobEnv(spec),
      timeoutMs: spec.timeoutMs,
      out: spec.out,
      fenceMs: watchdogFenceMs(spec.ttrMs, alone),
      node: self,
      ...runOptionsOf(spec)
    })
    // recorded only for a node cut off from the other member (the sole member of a cluster is not)
    const cutOff = (alone && claims.quorum() > 1) || undefined
    // the executor's time of the spawn, as the end record will carry it: a start stamped later than
    // the process's end (a short job, a busy node) made events on other nodes list the end first
    run.attempt = { ...attempt, alone: cutOff, uncontained: handle.uncontained, startedAt: handle.startedAt }
    await Promise.all([
      intents.started({ job: spec.id, epoch: attempt.epoch, pid: handle.pid, startTime: handle.startTime }),
      this.init.writeAttempt(run.attempt, false).then(() => { run.recorded = true })
    ])
    return await handle.result
  }

  private async settle (run: Run, result: RunResult): Promise<RunResult> {
    const settler = this.init.settler()
    if (settler == null || run.handle == null) return result
    return await settler(run.spec, result, run.handle.outputPaths.stdout)
  }

  private async finish (run: Run, result: RunResult): Promise<void> {
    // the slot is free once the process has ended: the next job need not wait for this record's fsync
    this.init.runs.freeSlot(run)
    this.init.changed()
    await this.init.writeAttempt(endedAttempt(run.attempt, result), true)
    await this.init.intents.end(run.spec.id, run.attempt.epoch)
    this.release(run.spec)
    // hooks run once the attempt is recorded, so they see the job's new state (e.g. failed for good)
    await run.handle?.wrapUp(this.init.table.get(run.spec.id)?.derived.state)
  }

  private release (spec: JobSpec): void {
    const run = this.init.runs.get(spec.id)
    if (run != null) this.init.runs.freeSlot(run)
    this.init.claims.release(spec.id, { recorded: run?.recorded === true })
    this.init.runs.remove(spec.id)
    this.init.table.requeue(spec.id) // taken off the queue to be started: back if it still waits
    this.init.table.refresh([spec.id])
    this.init.changed()
  }
}

function endedAttempt (attempt: Attempt, result: RunResult): Attempt {
  return {
    ...attempt,
    startedAt: result.startedAt,
    endedAt: result.endedAt,
    exitCode: result.exitCode,
    signal: result.signal,
    failReason: result.failReason,
    stdoutBytes: result.stdoutBytes,
    stderrBytes: result.stderrBytes,
    truncated: result.truncated || undefined,
    tail: result.tail,
    peakRssKb: result.peakRssKb,
    cpuMs: result.cpuMs
  }
}

/** The job's environment; a task of an array also sees its array's id and its index. */
function jobEnv (spec: JobSpec): Record<string, string> {
  if (spec.arrayId == null) return spec.env
  return { ...spec.env, MESHQ_ARRAY_ID: spec.arrayId, MESHQ_ARRAY_INDEX: String(spec.arrayIndex) }
}
