import createDebug from 'debug'
import { JobState } from '../types.js'
import type { Attempt, CoordinationStats, JobId, JobSpec, PeerIdString } from '../types.js'
import type { Clock } from '../clock.js'
import type { Ledger } from '../crdt/ledger.js'
import type { KVStore } from '../storage/store.js'
import type { Executor } from '../exec/executor.js'
import type { JobTable, TableEntry } from './table.js'
import type { Claims } from './claims.js'
import { reservedMemory } from './placement.js'
import type { NodeMemory } from './placement.js'
import { writeAttempt } from './scheduler/attempt-record.js'
import { Drain } from './scheduler/drain.js'
import { Fence } from './scheduler/fence.js'
import { IntentLog } from './scheduler/intent-log.js'
import { Launcher } from './scheduler/launcher.js'
import type { AttemptSettler } from './scheduler/launcher.js'
import { Pass } from './scheduler/pass.js'
import { RankDelay } from './scheduler/rank-delay.js'
import { readyReason } from './scheduler/ready-reason.js'
import { recoverLeftovers } from './scheduler/recovery.js'
import { Runs } from './scheduler/runs.js'
import { StorageBackoff } from './scheduler/storage-backoff.js'

export type { AttemptSettler } from './scheduler/launcher.js'

const log = createDebug('meshq:sched')

export interface SchedulerInit {
  self: PeerIdString
  slots: number
  tags: string[]
  clock: Clock
  table: JobTable
  ledger: Ledger
  store: KVStore
  executor: Executor
  claims: Claims
  /** What this node has for jobs' `--mem` (src/sched/placement.ts); absent: memory does not place jobs. */
  memory?: NodeMemory
}

/**
 * Runs ready jobs on this node's slots: picks them in priority order, records the attempt, starts
 * it, records the result. Kill requests and successes elsewhere stop local runs. A facade over its
 * parts in src/sched/scheduler/: the pass, the rank delay, the launcher, the intent log and its
 * recovery, fencing, drain and the storage backoff.
 */
export class Scheduler {
  private readonly init: SchedulerInit
  private readonly runs = new Runs()
  private readonly intents: IntentLog
  private readonly drainState = new Drain()
  private readonly rank: RankDelay
  private readonly pass: Pass
  private readonly launcher: Launcher
  private readonly fence: Fence
  private unsubscribe?: () => void
  private settler?: AttemptSettler

  constructor (init: SchedulerInit) {
    this.init = init
    const { clock, claims, table } = init
    const backoff = new StorageBackoff(clock)
    this.intents = new IntentLog(init.store)
    this.rank = new RankDelay(clock, claims)
    this.fence = new Fence({ runs: () => this.runs.values(), confirmedFor: job => claims.confirmedFor(job) })
    this.pass = new Pass({
      clock,
      table,
      claims,
      slots: init.slots,
      tags: init.tags,
      runs: this.runs,
      rank: this.rank,
      backoff,
      draining: () => this.drainState.active,
      freeMemory: () => this.freeMemory(),
      launch: spec => { void this.launcher.launch(spec) }
    })
    this.launcher = new Launcher({
      self: init.self,
      clock,
      table,
      claims,
      executor: init.executor,
      runs: this.runs,
      intents: this.intents,
      writeAttempt: async (attempt, sync) => { await this.writeAttempt(attempt, sync) },
      settler: () => this.settler,
      taken: spec => { this.rank.forget(spec.id) },
      storageFailed: () => { backoff.failed() },
      changed: () => { this.runChanged() }
    })
  }

  get slots (): number { return this.init.slots }
  get running (): number { return this.runs.size }
  get isDraining (): boolean { return this.drainState.active }

  /** Bytes of memory free here for jobs' `--mem`; undefined when memory does not place jobs. */
  freeMemory (): number | undefined {
    return this.init.memory?.free(reservedMemory(this.runs.values()))
  }

  /** What this node's claims have cost so far. */
  coordination (): CoordinationStats {
    return this.init.claims.stats()
  }

  /** Whether an attempt of this node is running now (its lease, from this node's point of view). */
  holds (attempt: Attempt): boolean {
    return this.runs.holds(attempt, this.init.self)
  }

  /**
   * Kills what a previous run of this node left behind (from the intent log) and records those
   * attempts as lost. Must run before `start`.
   */
  async recover (): Promise<number> {
    const { self, clock, table } = this.init
    const writeAttempt = async (attempt: Attempt, sync: boolean): Promise<void> => { await this.writeAttempt(attempt, sync) }
    return await recoverLeftovers({ self, clock, table, intents: this.intents, writeAttempt })
  }

  start (): void {
    const unsubscribe = [
      this.init.table.onChange((id, entry) => { this.onJobChange(id, entry) }),
      // an array's untouched tasks became ready, or wait for a time: a pass takes them or re-arms the timer
      this.init.table.onUntouchedChange(() => { this.schedulePass() })
    ]
    this.unsubscribe = () => { for (const stop of unsubscribe) stop() }
    this.fence.start()
    this.schedulePass()
  }

  /** Sets what looks at each finished attempt of this node before it is recorded. */
  settleWith (settler: AttemptSettler): void {
    this.settler = settler
  }

  /** Another node won a job this node runs (a late-seen rival claim): stop the local copy. */
  preempted (job: JobId): void {
    const run = this.runs.get(job)
    if (run?.handle == null) return
    log('preempted on %s: stopping the local run', job)
    run.handle.kill('lost')
  }

  /** Stops claiming; running jobs finish. Resolves when none is left. */
  async drain (): Promise<void> {
    await this.drainState.untilIdle(this.runs.size)
  }

  /** Kills every running job (they are recorded as killed and become claimable again) and stops. */
  async stop (): Promise<void> {
    this.pass.stop()
    this.drainState.begin()
    this.unsubscribe?.()
    this.fence.stop()
    for (const run of this.runs.values()) run.handle?.kill('lost')
    await Promise.all([...this.runs.values()].map(async run => await run.handle?.result))
    await this.init.ledger.flushNow()
  }

  /** Why a ready job is not running yet, as far as this node can tell for the whole mesh. */
  readyReason (spec: JobSpec): string {
    const { table, claims, self, slots, tags } = this.init
    // free memory matters only to a job with --mem, and reading it (/proc/meminfo) for every job listed cost ~2 % of a busy node
    const memFree = spec.memBytes === undefined ? undefined : this.freeMemory()
    const own = { self, slots, running: this.runs.used, draining: this.drainState.active, tags, memFree }
    return readyReason(spec, table, claims, own)
  }

  /** Asks for a scheduling pass soon (e.g. when a lease lapsed); passes asked for together run once. */
  schedulePass (): void {
    this.pass.request()
  }

  private onJobChange (id: JobId, entry: TableEntry): void {
    this.stopIfOver(id, entry)
    this.rank.seen(id, entry.derived.state === JobState.ready)
    // a pass also re-arms the wake-up timer for delays, backoffs and timed pauses; a job of a
    // limited group or array that changed state may have made room for another
    if (entry.derived.state === JobState.ready || entry.derived.wakeAt != null || this.init.table.capsOf(entry.facts.spec).length > 0) {
      this.schedulePass()
    }
  }

  /** Stops the local run of a job that was killed, removed, or done by another attempt. */
  private stopIfOver (id: JobId, entry: TableEntry): void {
    const run = this.runs.get(id)
    if (run?.handle == null) return
    const { derived } = entry
    const mine = derived.attempt?.node === this.init.self && derived.attempt.epoch === run.attempt.epoch
    if (derived.killRequested === true || (derived.state === JobState.done && !mine) || derived.removed) {
      log('stopping %s: %s', id, derived.killRequested === true ? 'kill requested' : 'finished elsewhere')
      run.handle.kill('killed')
    }
  }

  /** A run was given up or ended (or freed its slot): a drain may be over, and a slot may be free. */
  private runChanged (): void {
    this.drainState.runEnded(this.runs.size)
    this.schedulePass()
  }

  private async writeAttempt (attempt: Attempt, sync: boolean): Promise<void> {
    await writeAttempt(this.init.ledger, attempt, sync)
  }
}
