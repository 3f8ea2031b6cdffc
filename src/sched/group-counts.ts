import { JobState } from '../types.js'
import type { JobId, JobSpec } from '../types.js'
import type { Derived, GroupProgress } from '../crdt/derive.js'

interface Tally {
  total: number
  done: number
  /** Failed or killed by their own attempts or a kill. */
  failed: Set<JobId>
  /** Failed only because of a dependency. */
  inherited: Set<JobId>
}

/** How many jobs of each group there are and how they ended, kept by state transitions so that `--after-group` checks cost O(1). */
export class GroupCounts {
  private readonly tallies = new Map<string, Tally>()

  /** `submittedBefore` names the failed-by-a-dependency job every replica reports: the first submitted. */
  constructor (private readonly submittedBefore: (a: JobId, b: JobId) => boolean) {}

  /** Counts `weight` jobs in a state in (`sign` 1) or out (-1) of the job's group; a removed job is in no group. */
  count (spec: Pick<JobSpec, 'id' | 'group'>, derived: Derived, sign: 1 | -1, weight: number): void {
    if (derived.removed || spec.group == null) return
    let tally = this.tallies.get(spec.group)
    if (tally == null) this.tallies.set(spec.group, tally = { total: 0, done: 0, failed: new Set(), inherited: new Set() })
    tally.total += sign * weight
    if (derived.state === JobState.done) tally.done += sign * weight
    if (derived.state === JobState.failed || derived.state === JobState.killed) {
      const failures = derived.inheritedFailure === true ? tally.inherited : tally.failed
      if (sign > 0) failures.add(spec.id)
      else failures.delete(spec.id)
    }
  }

  progress (group: string): GroupProgress {
    const tally = this.tallies.get(group)
    if (tally == null) return { total: 0, done: 0, ended: 0 }
    // the smallest id, so that every replica names the same failed job
    let failed: JobId | undefined
    for (const id of tally.failed) if (failed == null || id < failed) failed = id
    let inherited: JobId | undefined
    for (const id of tally.inherited) if (inherited == null || this.submittedBefore(id, inherited)) inherited = id
    const ended = tally.done + tally.failed.size + tally.inherited.size
    return { total: tally.total, done: tally.done, ended, failed, inherited }
  }
}
