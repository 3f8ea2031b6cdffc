import type { JobSpec } from '../types.js'
import type { Clock } from '../clock.js'
import type { LimitFact, PauseFact } from '../crdt/facts.js'
import type { Cap } from './claims/group-limits.js'
import { GroupSettings } from './group-settings.js'

/** The pauses (`meshq pause`) and limits (`meshq limit`) in force for each group. */
export class GroupControls {
  private readonly pauses = new GroupSettings<PauseFact>()
  private readonly limits = new GroupSettings<LimitFact>()

  constructor (private readonly clock: Clock) {}

  /** Takes a pause or resume in; false if an equal or later one is in force. */
  offerPause (group: string, fact: PauseFact): boolean {
    return this.pauses.offer(group, fact)
  }

  /** Takes a limit in; false if an equal or later one is in force. */
  offerLimit (group: string, fact: LimitFact): boolean {
    return this.limits.offer(group, fact)
  }

  /** The pause in force for a group, if any. */
  activePause (group: string): { until?: number } | undefined {
    const pause = this.pauses.get(group)
    if (pause == null || !pause.paused) return undefined
    if (pause.until != null && pause.until <= this.clock.now()) return undefined
    return { until: pause.until }
  }

  /** The highest pause stamp for a group, so that a new pause or resume supersedes it. */
  pauseStamp (group: string): number {
    return this.pauses.stamp(group)
  }

  /** The cap on the group's jobs running at once across the mesh, if any. */
  limitOf (group: string): number | undefined {
    return this.limits.get(group)?.limit ?? undefined
  }

  limitStamp (group: string): number {
    return this.limits.stamp(group)
  }

  /** The caps a job runs under: its group's limit and its array's limit. */
  capsOf (spec: JobSpec): Cap[] {
    const caps: Cap[] = []
    const groupLimit = spec.group == null ? undefined : this.limitOf(spec.group)
    if (groupLimit != null) caps.push({ key: `group ${spec.group as string}`, limit: groupLimit })
    if (spec.arrayId != null && spec.arrayLimit != null) caps.push({ key: `array ${spec.arrayId}`, limit: spec.arrayLimit })
    return caps
  }

  /** Every group with a limit in force. */
  * limited (): Iterable<[string, number]> {
    for (const [group, fact] of this.limits.entries()) if (fact.limit != null) yield [group, fact.limit]
  }
}
