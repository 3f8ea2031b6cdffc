import createDebug from 'debug'
import { StorageError } from '../errors.js'
import { FailReason, JobState } from '../types.js'
import type { Attempt, CoordinationStats, JobId, JobSpec, PeerIdString } from '../types.js'
import type { Clock } from '../clock.js'
import type { Ledger } from '../crdt/ledger.js'
import { SegmentMap, attemptKey, segmentOf } from '../crdt/facts.js'
import { decodeJson, encodeJson } from '../storage/store.js'
import type { KVStore } from '../storage/store.js'
import type { Executor, RunHandle, RunResult } from '../exec/executor.js'
import { killLeftover } from '../exec/executor.js'
import { runOptionsOf } from '../jobs/draft.js'
import type { JobTable, TableEntry } from './table.js'
import type { Claims, PeerLoad } from './claims.js'
import { MEMORY_RECHECK_MS, fitsMemory, memoryReason, reservedMemory } from './placement.js'
import type { NodeMemory } from './placement.js'

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

/** How often running jobs are checked for self-fencing. */
const FENCE_CHECK_MS = 500
/**
 * The watchdog kills a job whose node has been stalled (or paused) for this fraction of its TTR,
 * before others may rerun it: its last renewal may be TTR/4 old (RENEWALS_PER_TTR), so others can
 * see the lease lapse 3/4 TTR after the node went silent; a quarter of the TTR is left for the kill.
 */
const FENCE_AT_TTR_FRACTION = 0.5

/**
 * How long before its confirmed lease runs out a holder kills the job: a fence check's interval,
 * plus a sixth of the TTR for the kill and for clocks that run at slightly different rates. With
 * renewals every TTR/4, a holder is fenced only if no quorum has acknowledged a renewal for more
 * than half the TTR (17 s at the default TTR): never by an ordinary stall.
 */
const fenceMarginMs = (ttrMs: number): number => FENCE_CHECK_MS + ttrMs / 6

/**
 * After a write to the store failed (a full disk), how long the node claims nothing: it could not
 * start what it won, and each claim it won keeps the job from the others for a TTR.
 */
const STORAGE_BACKOFF_MS = 5000

interface Run {
  spec: JobSpec
  attempt: Attempt
  handle?: RunHandle
  /** Its process has ended: its slot is free while its record is still being written. */
  slotFreed?: boolean
  /** Its start is in the ledger. */
  recorded?: boolean
}

/** Looks at a finished attempt before it is recorded and may turn it into a failure (`sub --expand`: src/sched/expand.ts). */
export type AttemptSettler = (spec: JobSpec, result: RunResult, stdoutPath: string) => Promise<RunResult>

/** What the node remembers, on disk, about each run it started: enough to kill it after a crash. */
interface Intent {
  job: JobId
  epoch: number
  pid?: number
  startTime?: string
}

const intentKey = (job: JobId, epoch: number): string => `intent:${job}:${epoch}`

/**
 * Runs ready jobs on this node's slots: picks them in priority order, records the attempt, starts
 * it, records the result. Kill requests and successes elsewhere stop local runs.
 */
export class Scheduler {
  private readonly init: SchedulerInit
  /** Runs of this node by job: claimed (being started) or running. */
  private readonly runs = new Map<JobId, Run>()
  private used = 0
  private draining = false
  private passScheduled = false
  private wakeTimer?: NodeJS.Timeout
  /** Monotonic time until which this node claims nothing, after a failed write (STORAGE_BACKOFF_MS). */
  private storageBlockedUntil = 0
  private storageTimer?: NodeJS.Timeout
  private stopped = false
  private unsubscribe?: () => void
  private drainedWaiters: Array<() => void> = []
  /** When each ready job was first seen ready here (monotonic): the start of its rank delay. */
  private readonly readySince = new Map<JobId, number>()
  private fenceTimer?: NodeJS.Timeout
  private settler?: AttemptSettler

  constructor (init: SchedulerInit) {
    this.init = init
  }

  get slots (): number { return this.init.slots }
  get running (): number { return this.runs.size }
  get isDraining (): boolean { return this.draining }

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
    return attempt.node === this.init.self && this.runs.get(attempt.job)?.attempt.epoch === attempt.epoch
  }

  /**
   * Kills what a previous run of this node left behind (from the intent log) and records those
   * attempts as lost. Must run before `start`.
   */
  async recover (): Promise<number> {
    const { store, table, clock, self } = this.init
    const leftovers: Intent[] = []
    for await (const [, value] of store.entries('intent:')) leftovers.push(decodeJson<Intent>(value))
    for (const intent of leftovers) {
      if (intent.pid != null && intent.startTime != null && killLeftover(intent.pid, intent.startTime)) {
        log('killed leftover process group %d of %s', intent.pid, intent.job)
      }
      const attempt = table.get(intent.job)?.facts.attempts.get(attemptKey(intent.job, intent.epoch, self))
      if (attempt != null && attempt.endedAt == null) {
        await this.writeAttempt({ ...attempt, endedAt: clock.now(), failReason: FailReason.lost }, true)
      }
    }
    await store.batch(leftovers.map(i => ({ key: intentKey(i.job, i.epoch), value: undefined })), { sync: true })
    table.refresh(leftovers.map(i => i.job))
    return leftovers.length
  }

  start (): void {
    const unsubscribe = [
      this.init.table.onChange((id, entry) => this.onJobChange(id, entry)),
      // an array's untouched tasks became ready, or wait for a time: a pass takes them or re-arms the timer
      this.init.table.onUntouchedChange(() => this.schedulePass())
    ]
    this.unsubscribe = () => { for (const stop of unsubscribe) stop() }
    this.fenceTimer = setInterval(() => { this.fence() }, FENCE_CHECK_MS)
    this.fenceTimer.unref()
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

  /**
   * Self-fencing: a node stops a job before a quorum without it may take the job over, that is
   * when its lease is about to outlast the renewals a quorum acknowledged (it is cut off, or its
   * link is lossy or one-way). A stall of the node itself is the watchdog's to fence.
   */
  private fence (): void {
    for (const run of this.runs.values()) {
      if (run.handle == null) continue
      const confirmed = this.init.claims.confirmedFor(run.spec.id) ?? Infinity
      if (confirmed >= fenceMarginMs(run.spec.ttrMs)) continue
      log('fencing %s: lease confirmed for %d ms more', run.spec.id, confirmed)
      run.handle.kill('lost')
    }
  }

  /** Stops claiming; running jobs finish. Resolves when none is left. */
  async drain (): Promise<void> {
    this.draining = true
    if (this.runs.size === 0) return
    await new Promise<void>(resolve => this.drainedWaiters.push(resolve))
  }

  /** Kills every running job (they are recorded as killed and become claimable again) and stops. */
  async stop (): Promise<void> {
    this.stopped = true
    this.draining = true
    this.unsubscribe?.()
    clearTimeout(this.wakeTimer)
    clearTimeout(this.storageTimer)
    clearInterval(this.fenceTimer)
    for (const run of this.runs.values()) run.handle?.kill('lost')
    await Promise.all([...this.runs.values()].map(async run => await run.handle?.result))
    await this.init.ledger.flushNow()
  }

  /** Why a ready job is not running yet, as far as this node can tell for the whole mesh. */
  readyReason (spec: JobSpec): string {
    const { claims, self, slots, tags } = this.init
    const lease = claims.leaseOf(spec.id)
    if (lease != null && lease.peer !== self && claims.bars(spec.id, this.knownEpoch(spec.id))) return `claimed by ${lease.peer}`
    const cap = claims.fullCap(spec.id)
    if (cap != null) return `${cap.key} is at its limit of ${cap.limit} running jobs`
    const nodes: Array<PeerLoad & { memFree?: number }> = [{ peer: self, slots, running: this.used, draining: this.draining, tags, memFree: this.freeMemory() }, ...claims.livePeers()]
    const able = nodes.filter(n => n.slots >= spec.cores && spec.tags.every(t => n.tags.includes(t)))
    if (able.length === 0) {
      return spec.tags.length > 0 ? `no live node has tag ${spec.tags.join(',')} and ${spec.cores} slots` : `needs ${spec.cores} slots; no live node has that many`
    }
    if (able.every(n => n.draining)) return 'every node that could run it is draining'
    const memory = memoryReason(spec, able)
    if (memory !== undefined) return memory
    const busy = able.filter(n => !n.draining).reduce((sum, n) => sum + n.running, 0)
    const total = able.filter(n => !n.draining).reduce((sum, n) => sum + n.slots, 0)
    return busy >= total ? `all slots busy (${busy}/${total})` : 'waiting to be claimed'
  }

  private eligible (spec: JobSpec): boolean {
    return spec.cores <= this.init.slots && spec.tags.every(t => this.init.tags.includes(t))
  }

  private onJobChange (id: JobId, entry: TableEntry): void {
    const run = this.runs.get(id)
    if (run?.handle != null) {
      const { derived } = entry
      const mine = derived.attempt?.node === this.init.self && derived.attempt.epoch === run.attempt.epoch
      if (derived.killRequested === true || (derived.state === JobState.done && !mine) || derived.removed) {
        log('stopping %s: %s', id, derived.killRequested === true ? 'kill requested' : 'finished elsewhere')
        run.handle.kill('killed')
      }
    }
    // the rank delay runs from when the job became ready, so that a job that waited for a slot is
    // not overtaken by a lower-priority one for which this node happens to rank first
    if (entry.derived.state !== JobState.ready) this.readySince.delete(id)
    else if (!this.readySince.has(id)) this.readySince.set(id, this.init.clock.monotonic())
    // a pass also re-arms the wake-up timer for delays, backoffs and timed pauses; a job of a
    // limited group or array that changed state may have made room for another
    if (entry.derived.state === JobState.ready || entry.derived.wakeAt != null || this.init.table.capsOf(entry.facts.spec).length > 0) this.schedulePass()
  }

  /** Asks for a scheduling pass soon (e.g. when a lease lapsed); passes asked for together run once. */
  schedulePass (): void {
    if (this.passScheduled || this.stopped) return
    this.passScheduled = true
    setImmediate(() => {
      this.passScheduled = false
      this.pass()
    })
  }

  /** Starts as many ready jobs as the free slots allow, in priority order. */
  private pass (): void {
    const { table } = this.init
    const nextWake = table.wakeDue()
    clearTimeout(this.wakeTimer)
    if (nextWake != null) {
      this.wakeTimer = setTimeout(() => this.schedulePass(), Math.max(0, nextWake - this.init.clock.now()) + 1)
      this.wakeTimer.unref()
    }
    if (this.draining) return
    const blocked = this.storageBlockedUntil - this.init.clock.monotonic()
    if (blocked > 0) {
      this.storageTimer ??= setTimeout(() => { this.storageTimer = undefined; this.schedulePass() }, blocked + 1).unref()
      return
    }
    let retryAt = Infinity
    const fullCaps = new Set<string>()
    const capped = (spec: JobSpec): boolean => {
      const caps = table.capsOf(spec)
      if (caps.length === 0) return false
      if (caps.some(cap => fullCaps.has(cap.key))) return true
      const full = this.init.claims.fullCap(spec.id)
      if (full != null) fullCaps.add(full.key)
      return full != null
    }
    table.takeReady(spec => {
      if (this.runs.has(spec.id) || !this.eligible(spec) || this.init.claims.bars(spec.id, this.knownEpoch(spec.id)) || capped(spec)) return false
      if (!fitsMemory(spec, () => this.freeMemory())) {
        retryAt = Math.min(retryAt, this.init.clock.monotonic() + MEMORY_RECHECK_MS)
        return false
      }
      if (spec.cores > this.init.slots - this.used) return 'stop' // strict priority: no overtaking
      const claimAt = this.claimAt(spec)
      if (claimAt > this.init.clock.monotonic()) {
        retryAt = Math.min(retryAt, claimAt)
        return false
      }
      void this.launch(spec)
      return true
    })
    if (retryAt < Infinity) setTimeout(() => this.schedulePass(), retryAt - this.init.clock.monotonic() + 1).unref()
  }

  private knownEpoch (job: JobId): number {
    return this.init.table.get(job)?.derived.epoch ?? 0
  }

  /** When this node may claim a ready job: at once if it ranks first for it, later otherwise. */
  private claimAt (spec: JobSpec): number {
    let since = this.readySince.get(spec.id)
    if (since == null) this.readySince.set(spec.id, since = this.init.clock.monotonic())
    return Math.max(since + this.init.claims.claimDelay(spec), this.init.claims.retryAt(spec.id))
  }

  private async launch (spec: JobSpec): Promise<void> {
    const { clock, table, self, store, executor } = this.init
    const derived = table.get(spec.id)?.derived
    if (derived == null) return
    const epoch = this.init.claims.nextEpoch(spec.id, derived.epoch)
    const attempt: Attempt = { job: spec.id, epoch, node: self, basis: derived.lamport, claimedAt: clock.now() }
    const run: Run = { spec, attempt }
    this.runs.set(spec.id, run)
    this.used += spec.cores
    this.readySince.delete(spec.id)
    try {
      const won = await this.init.claims.claim(spec.id, attempt.epoch, spec.ttrMs)
      const now = table.get(spec.id)?.derived
      if (!won || now?.state !== JobState.ready || now.epoch >= attempt.epoch) {
        this.release(spec)
        return
      }
      await store.batch([{ key: intentKey(spec.id, attempt.epoch), value: encodeJson({ job: spec.id, epoch: attempt.epoch }) }], { sync: true })
      // fencing only matters where another node could take the job over: not after a claim won alone
      const alone = this.init.claims.heldAlone(spec.id)
      const fenceMs = alone ? undefined : Math.floor(spec.ttrMs * FENCE_AT_TTR_FRACTION)
      run.handle = await executor.run({
        jobId: spec.id, epoch: attempt.epoch, cmd: spec.cmd, cwd: spec.cwd, env: jobEnv(spec), timeoutMs: spec.timeoutMs, out: spec.out, fenceMs, node: self, ...runOptionsOf(spec)
      })
      const intent: Intent = { job: spec.id, epoch: attempt.epoch, pid: run.handle.pid, startTime: run.handle.startTime }
      // recorded only for a node cut off from the other member (the sole member of a cluster is not)
      run.attempt = { ...attempt, alone: (alone && this.init.claims.quorum() > 1) || undefined, uncontained: run.handle.uncontained, startedAt: clock.now() }
      await Promise.all([
        store.batch([{ key: intentKey(spec.id, attempt.epoch), value: encodeJson(intent) }], { sync: true }),
        this.writeAttempt(run.attempt, false).then(() => { run.recorded = true })
      ])
      const result = await run.handle.result
      await this.finish(run, this.settler == null ? result : await this.settler(spec, result, run.handle.outputPaths.stdout))
    } catch (err) {
      log('run of %s failed to start or record: %s', spec.id, (err as Error).message)
      if (err instanceof StorageError) this.storageBlockedUntil = clock.monotonic() + STORAGE_BACKOFF_MS
      run.handle?.kill('lost')
      this.release(spec)
    }
  }

  private async finish (run: Run, result: RunResult): Promise<void> {
    const ended: Attempt = {
      ...run.attempt,
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
    // the slot is free once the process has ended: the next job need not wait for this record's fsync
    this.freeSlot(run)
    this.schedulePass()
    await this.writeAttempt(ended, true)
    await this.init.store.batch([{ key: intentKey(run.spec.id, run.attempt.epoch), value: undefined }])
    this.release(run.spec)
    // hooks run once the attempt is recorded, so they see the job's new state (e.g. failed for good)
    await run.handle?.wrapUp(this.init.table.get(run.spec.id)?.derived.state)
  }

  private freeSlot (run: Run): void {
    if (run.slotFreed === true) return
    run.slotFreed = true
    this.used -= run.spec.cores
  }

  private release (spec: JobSpec): void {
    const run = this.runs.get(spec.id)
    if (run != null) this.freeSlot(run)
    this.init.claims.release(spec.id, { recorded: run?.recorded === true })
    this.runs.delete(spec.id)
    this.init.table.requeue(spec.id) // taken off the queue to be started: back if it still waits
    this.init.table.refresh([spec.id])
    if (this.draining && this.runs.size === 0) for (const resolve of this.drainedWaiters.splice(0)) resolve()
    this.schedulePass()
  }

  private async writeAttempt (attempt: Attempt, sync: boolean): Promise<void> {
    await this.init.ledger.put([{
      doc: segmentOf(attempt.job) as string, map: SegmentMap.attempts, key: attemptKey(attempt.job, attempt.epoch, attempt.node), value: attempt
    }], { sync })
  }
}

/** The job's environment; a task of an array also sees its array's id and its index. */
function jobEnv (spec: JobSpec): Record<string, string> {
  if (spec.arrayId == null) return spec.env
  return { ...spec.env, MESHQ_ARRAY_ID: spec.arrayId, MESHQ_ARRAY_INDEX: String(spec.arrayIndex) }
}
