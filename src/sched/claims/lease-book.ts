import type { Clock } from '../../clock.js'
import type { Attempt, JobId } from '../../types.js'

export interface Lease {
  peer: string
  epoch: number
  /** Monotonic ms after which the lease is over unless renewed. */
  expiresAt: number
  /**
   * The holder is done with the job. The lease still bars claims until this replica's ledger has
   * the attempt's record: gossip outruns sync, and a job whose end is not known here looks ready.
   */
  released?: boolean
  /** The lease ran out here; kept (for a while) so that the attempt stays lost. */
  expired?: boolean
}

/** How long a lapsed lease is remembered. */
const FORGET_LEASES_AFTER_MS = 10 * 60_000

export interface LeaseBookInit {
  clock: Clock
  /** The highest attempt epoch this replica's ledger knows for the job. */
  knownEpoch?: (job: JobId) => number
  /** Whether this replica's ledger has the attempt of that epoch ended (or the job finished). */
  ended?: (job: JobId, epoch: number) => boolean
}

/**
 * What this node knows of every job's lease, its own and the others', timed on this node's
 * monotonic clock: a lease lapses here TTR after the last claim, vote or renewal heard of it.
 */
export class LeaseBook {
  readonly #init: LeaseBookInit
  readonly #leases = new Map<JobId, Lease>()

  constructor (init: LeaseBookInit) {
    this.#init = init
  }

  /** The lease record, live or not. */
  get (job: JobId): Lease | undefined {
    return this.#leases.get(job)
  }

  set (job: JobId, lease: Lease): void {
    this.#leases.set(job, lease)
  }

  delete (job: JobId): void {
    this.#leases.delete(job)
  }

  /**
   * The live lease on a job, if any: held, or released. A released lease does not lapse with time:
   * its holder has recorded the attempt's end, which this replica will get, and until it does the
   * job must not look free here.
   */
  live (job: JobId): Lease | undefined {
    const lease = this.#leases.get(job)
    return lease != null && (lease.released === true || lease.expiresAt > this.#now()) ? lease : undefined
  }

  /**
   * Whether a lease keeps a job from being claimed, given the highest epoch this replica's
   * ledger knows for it: a released lease stops counting once its attempt's end is recorded here.
   */
  bars (job: JobId, knownEpoch: number): boolean {
    const lease = this.live(job)
    return lease != null && (lease.released !== true || knownEpoch < lease.epoch || !this.recorded(job, lease.epoch))
  }

  /** Whether a remote attempt's lease is still held, as far as this node has heard. */
  alive (attempt: Attempt, ttrMs: number): boolean {
    const lease = this.#leases.get(attempt.job)
    const now = this.#now()
    if (lease == null || lease.epoch < attempt.epoch) {
      // first news of this attempt: it gets one TTR from now to show a renewal
      this.#leases.set(attempt.job, { peer: attempt.node, epoch: attempt.epoch, expiresAt: now + ttrMs })
      return true
    }
    if (lease.epoch > attempt.epoch || lease.peer !== attempt.node) return false
    return lease.expiresAt > now
  }

  /**
   * Whether this replica's ledger has the end of the attempt at `epoch` of the job (or a later
   * attempt): its start is not enough, since a released lease whose end has not arrived yet is a
   * job that may be done (on a loaded mesh, 10 nodes on 2 cores, a job done 3 s before was claimed
   * and run again by voters that had only its start).
   */
  recorded (job: JobId, epoch: number): boolean {
    return (this.#init.knownEpoch?.(job) ?? epoch) > epoch || (this.#init.ended?.(job, epoch) ?? true)
  }

  /** The holder of that attempt says it is done with the job. */
  released (job: JobId, peer: string, epoch: number): void {
    const lease = this.#leases.get(job)
    if (lease?.peer === peer && lease.epoch === epoch) lease.released = true
  }

  /**
   * Takes in another node's claim or renewal; returns whether it is now the job's lease. A renewal
   * comes from the winner of its epoch and replaces any claim of that epoch; a claim only marks a
   * job nobody is known to hold at that epoch. `holding`: this node holds the job itself.
   */
  observe (job: JobId, rival: Lease, renewal: boolean, holding: boolean): boolean {
    const current = this.#leases.get(job)
    // a released lease stays released: its renewal may come in the same batch as the release
    if (current?.released === true && current.peer === rival.peer && current.epoch === rival.epoch) return false
    if (current != null && (rival.epoch < current.epoch ||
      (rival.epoch === current.epoch && current.peer !== rival.peer && (!renewal || holding)))) return false
    // a mere claim does not displace a lease that bars the job: only the winner's renewal does. Nor a
    // released one whose end is not recorded here: the claim may be withdrawn, and the bar with it
    if (!renewal && current != null && (current.released === true
      ? !this.recorded(job, current.epoch)
      : current.peer !== rival.peer && current.expiresAt > this.#now())) return false
    this.#leases.set(job, rival)
    return true
  }

  /**
   * Lifts the bar a withdrawn claim put on the job here (a won lease is never withdrawn). The
   * record stays, as lapsed: deleted, it would let an older open attempt of the job look new here
   * and be given a fresh TTR (`alive`), and a dead holder's job would never be free.
   */
  withdrawn (job: JobId, peer: string, epoch: number): void {
    const lease = this.#leases.get(job)
    if (lease?.peer !== peer || lease.epoch !== epoch || lease.released === true) return
    lease.expiresAt = Math.min(lease.expiresAt, this.#now())
    lease.expired = true
  }

  /** Jobs whose lease has just lapsed here; forgets leases lapsed or released long ago. */
  lapse (): JobId[] {
    const now = this.#now()
    const lapsed: JobId[] = []
    for (const [job, lease] of this.#leases) {
      if (lease.expiresAt < now - FORGET_LEASES_AFTER_MS && (lease.released === true || lease.expired === true)) {
        this.#leases.delete(job)
        continue
      }
      if (lease.expiresAt > now || lease.released === true || lease.expired === true) continue
      lease.expired = true
      lapsed.push(job)
    }
    return lapsed
  }

  /** Whether a lease may still lapse: one neither released nor lapsed here (see `lapse`). */
  get anyRunning (): boolean {
    for (const lease of this.#leases.values()) if (lease.released !== true && lease.expired !== true) return true
    return false
  }

  /** Jobs under a lease that is neither released nor lapsed. */
  * running (): Generator<JobId> {
    const now = this.#now()
    for (const [job, lease] of this.#leases) if (lease.released !== true && lease.expiresAt > now) yield job
  }

  #now (): number {
    return this.#init.clock.monotonic()
  }
}
