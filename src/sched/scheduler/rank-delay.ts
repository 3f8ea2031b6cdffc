import type { Clock } from '../../clock.js'
import type { JobId, JobSpec } from '../../types.js'
import type { Claims } from '../claims.js'

/**
 * When this node may claim a ready job: at once if it ranks first for it, later otherwise. The
 * rank delay runs from when the job became ready, so that a job that waited for a slot is not
 * overtaken by a lower-priority one for which this node happens to rank first.
 */
export class RankDelay {
  /** When each ready job was first seen ready here (monotonic): the start of its rank delay. */
  private readonly readySince = new Map<JobId, number>()

  constructor (private readonly clock: Clock, private readonly claims: Pick<Claims, 'claimDelay' | 'retryAt'>) {}

  /** The job is ready (its delay starts now unless it already runs) or not (it is forgotten). */
  seen (job: JobId, ready: boolean): void {
    if (!ready) this.readySince.delete(job)
    else if (!this.readySince.has(job)) this.readySince.set(job, this.clock.monotonic())
  }

  forget (job: JobId): void {
    this.readySince.delete(job)
  }

  /** Monotonic time from which this node, of that rank for the job (`Claims.ranking`), may claim it. */
  claimAt (spec: JobSpec, rank: number): number {
    let since = this.readySince.get(spec.id)
    if (since == null) this.readySince.set(spec.id, since = this.clock.monotonic())
    return Math.max(since + this.claims.claimDelay(rank), this.claims.retryAt(spec.id))
  }
}
