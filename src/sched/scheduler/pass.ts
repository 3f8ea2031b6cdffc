import type { Clock } from '../../clock.js'
import type { JobId, JobSpec } from '../../types.js'
import type { JobTable } from '../table.js'
import type { Claims } from '../claims.js'
import { MEMORY_RECHECK_MS, fitsMemory } from '../placement.js'
import { Lookahead, lookaheadWidth } from './lookahead.js'
import type { RankDelay } from './rank-delay.js'
import type { Runs } from './runs.js'
import type { StorageBackoff } from './storage-backoff.js'

export interface PassInit {
  clock: Clock
  table: JobTable
  claims: Claims
  slots: number
  tags: string[]
  runs: Runs
  rank: RankDelay
  backoff: StorageBackoff
  draining: () => boolean
  freeMemory: () => number | undefined
  /** Claims and starts a job taken off the run queue. */
  launch: (spec: JobSpec) => void
}

/** The highest epoch of the job this node knows from the ledger. */
export const knownEpoch = (table: JobTable, job: JobId): number => table.get(job)?.derived.epoch ?? 0

/**
 * The scheduling pass: takes as many ready jobs as the free slots allow, in priority order, and
 * arms the timers that call for the next pass (wake-ups, the storage backoff, rank delays, memory).
 */
export class Pass {
  private scheduled = false
  private stopped = false
  private wakeTimer?: NodeJS.Timeout
  private storageTimer?: NodeJS.Timeout

  constructor (private readonly init: PassInit) {}

  /** Asks for a pass soon (e.g. when a lease lapsed); passes asked for together run once. */
  request (): void {
    if (this.scheduled || this.stopped) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.run()
    })
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.wakeTimer)
    clearTimeout(this.storageTimer)
  }

  private run (): void {
    this.armWakeUp()
    if (this.init.draining() || this.waitsForStorage()) return
    const retryAt = this.takeReady()
    if (retryAt < Infinity) setTimeout(() => { this.request() }, retryAt - this.init.clock.monotonic() + 1).unref()
  }

  /** Re-arms the timer for the next delay, backoff or timed pause that ends. */
  private armWakeUp (): void {
    const nextWake = this.init.table.wakeDue()
    clearTimeout(this.wakeTimer)
    if (nextWake == null) return
    this.wakeTimer = setTimeout(() => { this.request() }, Math.max(0, nextWake - this.init.clock.now()) + 1)
    this.wakeTimer.unref()
  }

  private waitsForStorage (): boolean {
    const blocked = this.init.backoff.remaining()
    if (blocked <= 0) return false
    this.storageTimer ??= setTimeout(() => { this.storageTimer = undefined; this.request() }, blocked + 1).unref()
    return true
  }

  /** Launches the ready jobs this node may start now; returns when to look again at those it may start later. */
  private takeReady (): number {
    const { table, claims, clock, runs, rank } = this.init
    let retryAt = Infinity
    const capped = cappedInPass(table, claims)
    const { nodes, rankOf } = claims.ranking() // the live peers, read once for the pass
    const lookahead = new Lookahead(lookaheadWidth(nodes, this.init.slots - runs.used))
    table.takeReady(spec => {
      if (runs.has(spec.id) || !this.eligible(spec) || claims.bars(spec.id, knownEpoch(table, spec.id)) || capped(spec)) return false
      if (!fitsMemory(spec, this.init.freeMemory)) {
        retryAt = Math.min(retryAt, clock.monotonic() + MEMORY_RECHECK_MS)
        return false
      }
      if (spec.cores > this.init.slots - runs.used) return 'stop' // strict priority: no overtaking
      const myRank = rankOf(spec)
      const claimAt = rank.claimAt(spec, myRank)
      if (claimAt > clock.monotonic()) {
        retryAt = Math.min(retryAt, claimAt)
        return false
      }
      return lookahead.offer(spec, myRank) ? false : 'stop'
    })
    this.launchAll(lookahead.picks(this.init.slots - runs.used))
    return retryAt
  }

  /**
   * Takes the picked jobs off the run queue (an array's task gets its own entry) and launches them,
   * one at a time: a launch counts against its group's and array's caps before the next is checked.
   */
  private launchAll (picks: JobSpec[]): void {
    for (const spec of picks) {
      if (this.init.runs.has(spec.id) || this.init.claims.fullCap(spec.id) != null) continue
      let taken = false
      this.init.table.takeReady(next => taken ? 'stop' : (taken = next.id === spec.id))
      this.init.launch(spec)
    }
  }

  private eligible (spec: JobSpec): boolean {
    return spec.cores <= this.init.slots && spec.tags.every(t => this.init.tags.includes(t))
  }
}

/** Whether a job is held back by a group or array at its limit; a cap found full stays full for the pass. */
function cappedInPass (table: JobTable, claims: Claims): (spec: JobSpec) => boolean {
  const fullCaps = new Set<string>()
  return spec => {
    const caps = table.capsOf(spec)
    if (caps.length === 0) return false
    if (caps.some(cap => fullCaps.has(cap.key))) return true
    const full = claims.fullCap(spec.id)
    if (full != null) fullCaps.add(full.key)
    return full != null
  }
}
