import type { JobId } from '../../types.js'
import type { LeaseBook } from './lease-book.js'

export interface GroupLimitsInit {
  leases: LeaseBook
  /** This node's claims waiting for a quorum. */
  pending: () => Iterable<JobId>
  /** The job's group. */
  groupOf?: (job: JobId) => string | undefined
  /** The cap on a group's jobs running at once across the mesh (`meshq limit`), if any. */
  limitOf?: (group: string) => number | undefined
}

/**
 * Group limits as far as this node knows: the jobs of a group under a live lease, plus this
 * node's own pending claims. Voters check them too, so that a claim over the limit finds no majority.
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
    const rule = this.#rule(job)
    return rule != null && this.#taken(rule.group, job, forVote ? other => other < job : () => true) >= rule.limit
  }

  /**
   * Before this node votes for a claim of `job`: its own pending claims of the same group that sort
   * after it and that, together with it, would go over the group's limit. They are to be given up:
   * the vote goes to the earlier job, so that of two crossing claims in a full group, one wins.
   */
  overtaken (job: JobId): JobId[] {
    const rule = this.#rule(job)
    if (rule == null) return []
    const later = [...this.#init.pending()].filter(other => other > job && this.#init.groupOf?.(other) === rule.group)
    return later.length > 0 && this.#taken(rule.group, job, other => other < job) + 1 + later.length > rule.limit ? later : []
  }

  #rule (job: JobId): { group: string, limit: number } | undefined {
    const group = this.#init.groupOf?.(job)
    const limit = group == null ? undefined : this.#init.limitOf?.(group)
    return group == null || limit == null ? undefined : { group, limit }
  }

  /** Jobs of the group other than `job` under a live lease, plus this node's pending claims that `pending` counts. */
  #taken (group: string, job: JobId, pending: (other: JobId) => boolean): number {
    const { leases } = this.#init
    const inGroup = (other: JobId): boolean => other !== job && this.#init.groupOf?.(other) === group
    let count = 0
    for (const other of leases.running()) if (inGroup(other)) count++
    for (const other of this.#init.pending()) if (leases.get(other) == null && inGroup(other) && pending(other)) count++
    return count
  }
}
