import { isTerminal } from '../types.js'
import type { JobId } from '../types.js'
import { segmentOf } from '../crdt/facts.js'
import type { Derived } from '../crdt/derive.js'

interface Tally {
  /** Specs in the segment: a job counts once, an array once for all its tasks. */
  total: number
  /** Jobs and tasks that have not finished. */
  unsettled: number
}

/** How many jobs each segment holds and how many have not finished, so that the sealer's check costs O(1). */
export class SegmentCounts {
  private readonly tallies = new Map<string, Tally>()

  /**
   * Counts `specs` specs and `jobs` jobs in a state in or out of the job's segment (negative counts
   * take out). A removed job counts as settled, so that the segment can still be sealed.
   */
  count (id: JobId, derived: Pick<Derived, 'state' | 'removed'>, specs: number, jobs: number): void {
    const tally = this.of(id)
    tally.total += specs
    if (!derived.removed && !isTerminal(derived.state)) tally.unsettled += jobs
  }

  /** An array's spec in its segment's count: its tasks count only as unsettled work. */
  countArraySpec (id: JobId): void {
    this.of(id).total++
  }

  /** Whether every job of a segment holding `capacity` jobs has finished. */
  settled (seg: string, capacity: number): boolean {
    const tally = this.tallies.get(seg)
    return tally != null && tally.total >= capacity && tally.unsettled === 0
  }

  forget (seg: string): void {
    this.tallies.delete(seg)
  }

  private of (id: JobId): Tally {
    const seg = segmentOf(id) as string
    let tally = this.tallies.get(seg)
    if (tally == null) this.tallies.set(seg, tally = { total: 0, unsettled: 0 })
    return tally
  }
}
