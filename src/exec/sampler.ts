/**
 * Resource readings for running jobs, taken from `/proc`.
 *
 * Every interval, one scan of `/proc` sums, per tracked process group, the RSS and the CPU time of its
 * members. A job is also sampled right as it starts (its leader, from the reading taken at spawn) and
 * once more when its leader exits (the members seen by the last scan that are still there). This is
 * best effort: a job shorter than the interval may report tiny values or 0 (its leader's reading at
 * spawn is taken right after exec), and the CPU time of a process is only counted while it, or a group
 * member that reaped it, is alive (the leader's own time is lost once we reap it).
 *
 * A group may have a memory limit: while one is tracked, scans run every `limitIntervalMs` (250 ms by
 * default) and the group's owner is told the first time the sum of its members' RSS exceeds the limit.
 */
import { log } from './log.js'
import { listPids, readStat, type ProcStat } from './proc.js'

/** Scan period while a group with a memory limit runs: a job allocating fast gets this long past it. */
const LIMIT_SAMPLE_MS = 250

export interface MemoryLimit {
  kb: number
  /** Called once, from the first scan that sees the group above the limit. */
  exceeded: (rssKb: number) => void
}

export interface Usage {
  /** Highest sum of the members' RSS seen. */
  peakRssKb?: number
  /** Highest sum of the members' CPU time seen (it can drop when members exit, so keep the max). */
  cpuMs?: number
}

interface TrackedGroup {
  usage: Usage
  /** Members seen by the latest sample. */
  members: number[]
  limit?: MemoryLimit
}

export class UsageSampler {
  readonly #intervalMs: number
  readonly #limitIntervalMs: number
  readonly #groups = new Map<number, TrackedGroup>()
  #timer?: NodeJS.Timeout
  #started = false
  #scanning = false
  #lastScan = 0

  constructor (intervalMs: number, limitIntervalMs = Math.min(intervalMs, LIMIT_SAMPLE_MS)) {
    this.#intervalMs = intervalMs
    this.#limitIntervalMs = limitIntervalMs
  }

  /** Scans while it tracks a group: a node with no job running does not wake up for it. */
  start (): void {
    this.#started = true
    this.#arm()
  }

  stop (): void {
    this.#started = false
    this.#disarm()
  }

  /** Starts tracking the group whose leader is `pgid`, with a first reading of the leader. */
  track (pgid: number, leader?: ProcStat, limit?: MemoryLimit): void {
    this.#groups.set(pgid, { usage: {}, members: [pgid], limit })
    if (leader !== undefined) this.#record(pgid, [leader])
    this.#arm()
  }

  #arm (): void {
    if (!this.#started || this.#timer !== undefined || this.#groups.size === 0) return
    this.#timer = setInterval(() => { this.#tick() }, this.#limitIntervalMs)
    this.#timer.unref()
  }

  #disarm (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /**
   * Once the leader has exited (and was reaped: it is gone from `/proc`), samples the members the last
   * scan saw one last time, stops tracking the group and returns its usage.
   */
  async release (pgid: number): Promise<Usage> {
    const group = this.#groups.get(pgid)
    if (group === undefined) return {}
    const stats = await Promise.all(group.members.filter(pid => pid !== pgid).map(readStat))
    this.#record(pgid, stats.filter((stat): stat is ProcStat => stat?.pgrp === pgid))
    this.#groups.delete(pgid)
    if (this.#groups.size === 0) this.#disarm()
    return group.usage
  }

  /** Scans at the base interval, or at every tick while a group has a memory limit. */
  #tick (): void {
    const now = Date.now()
    const limited = [...this.#groups.values()].some(group => group.limit !== undefined)
    if (!limited && now - this.#lastScan < this.#intervalMs) return
    this.#lastScan = now
    void this.#scan()
  }

  async #scan (): Promise<void> {
    if (this.#scanning || this.#groups.size === 0) return
    this.#scanning = true
    try {
      const byGroup = new Map<number, ProcStat[]>()
      for (const stat of await Promise.all((await listPids()).map(readStat))) {
        if (stat === undefined || !this.#groups.has(stat.pgrp)) continue
        const members = byGroup.get(stat.pgrp) ?? []
        members.push(stat)
        byGroup.set(stat.pgrp, members)
      }
      for (const [pgid, stats] of byGroup) this.#record(pgid, stats)
    } catch (err) {
      log('resource scan failed: %O', err)
    } finally {
      this.#scanning = false
    }
  }

  #record (pgid: number, members: ProcStat[]): void {
    const group = this.#groups.get(pgid)
    if (group === undefined || members.length === 0) return
    const { usage } = group
    group.members = members.map(({ pid }) => pid)
    const rssKb = sum(members.map(({ rssKb }) => rssKb))
    usage.peakRssKb = Math.max(usage.peakRssKb ?? 0, rssKb)
    usage.cpuMs = Math.max(usage.cpuMs ?? 0, sum(members.map(({ cpuMs }) => cpuMs)))
    const { limit } = group
    if (limit !== undefined && rssKb > limit.kb) {
      group.limit = undefined
      limit.exceeded(rssKb)
    }
  }
}

function sum (values: number[]): number {
  return values.reduce((total, value) => total + value, 0)
}
