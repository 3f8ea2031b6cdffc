/** `meshq stats`: counts of jobs per state and per group, and the throughput. */
import type { Clock } from '../clock.js'
import type { Startable } from '../lifecycle.js'
import type { JobTable } from '../sched/table.js'
import { JobState, isTerminal } from '../types.js'
import type { StatsView } from '../types.js'

/** Window for the throughput figure of `stats`. */
const THROUGHPUT_WINDOW_MS = 60_000

/**
 * The throughput of `meshq stats`: jobs that ended in the last minute, per second, as this node saw
 * them end. It counts from its start, after the ledger has loaded: history on disk is not throughput.
 */
export class Throughput implements Startable {
  private readonly finishedAt: number[] = []
  private unsubscribe = (): void => {}

  constructor (private readonly table: JobTable, private readonly clock: Clock) {}

  start (): void {
    this.unsubscribe = this.table.onChange((_, entry) => {
      if (isTerminal(entry.derived.state) && entry.derived.attempt?.endedAt != null) this.finishedAt.push(this.clock.now())
    })
  }

  stop (): void {
    this.unsubscribe()
  }

  perSecond (): number {
    const since = this.clock.now() - THROUGHPUT_WINDOW_MS
    while (this.finishedAt.length > 0 && this.finishedAt[0] < since) this.finishedAt.shift()
    return this.finishedAt.length / (THROUGHPUT_WINDOW_MS / 1000)
  }
}

/** Jobs per state, and per state within each group, over every job this node knows. */
export function jobCounts (table: JobTable): Pick<StatsView, 'states' | 'groups'> {
  const states = Object.fromEntries(Object.values(JobState).map(s => [s, 0])) as Record<JobState, number>
  const groups: StatsView['groups'] = {}
  const add = (state: JobState, group: string | undefined, n = 1): void => {
    states[state] += n
    if (group == null) return
    const counts = groups[group] ??= {}
    counts[state] = (counts[state] ?? 0) + n
  }
  for (const [, entry] of table.all()) add(entry.derived.state, entry.facts.spec.group)
  // an array's untouched tasks at once; a sealed array's own record is not a job (its tasks are counted)
  for (const lazy of table.untouchedTasks()) if (!lazy.derived.removed) add(lazy.derived.state, lazy.array.group, lazy.count)
  for (const [, job] of table.sealedJobs()) if (job.array !== true) add(job.state, job.group)
  return { states, groups }
}
