import type { Clock } from '../../clock.js'
import type { JobId } from '../../types.js'
import { remember } from './rank.js'

/**
 * How long a node waits before it claims a job again after losing a claim of it: the others may
 * know of a lease it has not heard of yet (liveness only; it keeps a node from spinning on claims
 * that are refused at once).
 */
const LOST_CLAIM_BACKOFF_MS = 1000
const MAX_LOST_CLAIM_BACKOFF_MS = 10_000

/**
 * After a lost claim: waits before claiming the job again, doubling with each loss in a row and
 * with a random part, so that many nodes that keep colliding on one job (all claiming it the
 * moment a dead holder's lease lapses, say) spread out instead of colliding again.
 */
export class ClaimBackoff {
  readonly #clock: Clock
  readonly #random: () => number
  readonly #until = new Map<JobId, { until: number, losses: number }>()

  constructor (clock: Clock, random: () => number = Math.random) {
    this.#clock = clock
    this.#random = random
  }

  lost (job: JobId): void {
    const losses = (this.#until.get(job)?.losses ?? 0) + 1
    const delay = Math.min(MAX_LOST_CLAIM_BACKOFF_MS, LOST_CLAIM_BACKOFF_MS * 2 ** (losses - 1)) * (0.5 + this.#random())
    remember(this.#until, job, { until: this.#clock.monotonic() + delay, losses })
  }

  won (job: JobId): void {
    this.#until.delete(job)
  }

  /** Monotonic time before which this node should not claim the job. */
  retryAt (job: JobId): number {
    return this.#until.get(job)?.until ?? 0
  }
}
