import type { Attempt, JobId, JobSpec, PeerIdString } from '../../types.js'
import type { RunHandle } from '../../exec/executor.js'

export interface Run {
  spec: JobSpec
  attempt: Attempt
  handle?: RunHandle
  /** Its process has ended: its slot is free while its record is still being written. */
  slotFreed?: boolean
  /** Its start is in the ledger. */
  recorded?: boolean
}

/** The runs of this node by job, claimed (being started) or running, and the slots they take. */
export class Runs {
  private readonly byJob = new Map<JobId, Run>()
  private usedSlots = 0

  get size (): number { return this.byJob.size }
  /** Slots taken by runs whose process has not ended yet. */
  get used (): number { return this.usedSlots }

  get (job: JobId): Run | undefined { return this.byJob.get(job) }
  has (job: JobId): boolean { return this.byJob.has(job) }
  values (): IterableIterator<Run> { return this.byJob.values() }

  add (run: Run): void {
    this.byJob.set(run.spec.id, run)
    this.usedSlots += run.spec.cores
  }

  /** Whether this node runs that attempt now (its lease, from this node's point of view). */
  holds (attempt: Attempt, self: PeerIdString): boolean {
    return attempt.node === self && this.byJob.get(attempt.job)?.attempt.epoch === attempt.epoch
  }

  freeSlot (run: Run): void {
    if (run.slotFreed === true) return
    run.slotFreed = true
    this.usedSlots -= run.spec.cores
  }

  /** Forgets the job's run, freeing its slot if that was not done yet. */
  remove (job: JobId): void {
    const run = this.byJob.get(job)
    if (run != null) this.freeSlot(run)
    this.byJob.delete(job)
  }
}
