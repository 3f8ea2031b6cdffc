import type { JobId } from '../../types.js'
import type { LeaseBook } from './lease-book.js'

/**
 * A cap on jobs running at once across the mesh: a group's (`meshq limit`, key `group <name>`)
 * or an array's (`--array-limit`, key `array <id>`). Jobs under the same key share the cap; the
 * key also names the cap to people ("group render is at its limit").
 */
export interface Cap {
  key: string
  limit: number
}

export interface GroupLimitsInit {
  leases: LeaseBook
  /** This node's claims waiting for a quorum. */
  pending: () => Iterable<JobId>
  /** The caps the job is under. */
  capsOf?: (job: JobId) => readonly Cap[]
}

/**
 * Caps as far as this node knows: the jobs under a cap with a live lease, plus this node's own
 * pending claims. Voters check them too, so that a claim over a cap finds no majority.
 */
export class GroupLimits {
  readonly #init: GroupLimitsInit

  constructor (init: GroupLimitsInit) {
    this.#init = init
  }

  /**
   * Whether the job's group already has as many jobs running or being claimed as its limit allows.
   * `forVote`: this node's own pending claims count only if their job sorts before this one, so
   * that two nodes claiming two jobs of a full group at once do not each refuse the other's claim.
   */
  atLimit (job: JobId, forVote = false): boolean {
    return this.fullCap(job, forVote) != null
  }

  /** The first of the job's caps that is full, if any (see atLimit). */
  fullCap (job: JobId, forVote = false): Cap | undefined {
    return this.#caps(job).find(cap => this.#taken(cap.key, job, forVote ? other => other < job : () => true) >= cap.limit)
  }

  /**
   * Before this node votes for a claim of `job`: its own pending claims of the same group that sort
   * after it and that, together with it, would go over the group's limit. They are to be given up:
   * the vote goes to the earlier job, so that of two crossing claims in a full group, one wins.
   */
  overtaken (job: JobId): JobId[] {
    const given = new Set<JobId>()
    for (const cap of this.#caps(job)) {
      const later = [...this.#init.pending()].filter(other => other > job && this.#under(other, cap.key))
      const overLimit = later.length > 0 && this.#taken(cap.key, job, other => other < job) + 1 + later.length > cap.limit
      if (overLimit) for (const other of later) given.add(other)
    }
    return [...given]
  }

  #caps (job: JobId): readonly Cap[] {
    return this.#init.capsOf?.(job) ?? []
  }

  #under (job: JobId, key: string): boolean {
    return this.#caps(job).some(cap => cap.key === key)
  }

  /** Jobs under the cap other than `job` with a live lease, plus this node's pending claims that `pending` counts. */
  #taken (key: string, job: JobId, pending: (other: JobId) => boolean): number {
    const { leases } = this.#init
    const inGroup = (other: JobId): boolean => other !== job && this.#under(other, key)
    let count = 0
    for (const other of leases.running()) if (inGroup(other)) count++
    for (const other of this.#init.pending()) if (leases.get(other) == null && inGroup(other) && pending(other)) count++
    return count
  }
}
