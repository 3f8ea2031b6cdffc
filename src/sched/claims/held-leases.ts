import type { Clock } from '../../clock.js'
import type { JobId } from '../../types.js'

/**
 * Renewals per TTR. Others may see a lease lapse TTR after the last renewal they heard, which
 * can be TTR/4 older than a stall of its holder; the watchdog fences a stalled holder after TTR/2,
 * so a quarter of the TTR is left for the kill.
 */
const RENEWALS_PER_TTR = 4
/** Renewal batches remembered for their acknowledgements. */
const MAX_REMEMBERED_RENEWALS = 1000

/**
 * A lease this node holds. `confirmedUntil` is how long the others are known to keep it: a renewal
 * that a majority acknowledged was sent at some time t, and none of them sees the lease lapse before
 * t + TTR on its own clock, so no takeover can gather a majority before then.
 */
interface HeldLease {
  epoch: number
  /** Won without votes by a node alone: nobody else can take it over, so it is never fenced. */
  alone: boolean
  ttrMs: number
  renewedAt: number
  /** Per peer, when the latest renewal it acknowledged was sent. */
  acked: Map<string, number>
  confirmedUntil: number
}

/** A renewal on the wire: [job, epoch, ttrMs]. */
export type Renewal = [JobId, number, number]

/**
 * The leases this node holds: when to renew them, and how long the others are known to keep
 * them (from their acknowledgements of the renewals).
 */
export class HeldLeases {
  readonly #clock: Clock
  readonly #held = new Map<JobId, HeldLease>()
  /** The renewals in each batch this node sent, by seq, with when it went out. */
  readonly #sent = new Map<number, { at: number, jobs: Array<[JobId, number]> }>()

  constructor (clock: Clock) {
    this.#clock = clock
  }

  /** How many leases this node holds. */
  get size (): number {
    return this.#held.size
  }

  has (job: JobId): boolean {
    return this.#held.has(job)
  }

  /** The epoch of the lease held on the job, if any. */
  epochOf (job: JobId): number | undefined {
    return this.#held.get(job)?.epoch
  }

  /** Whether the lease was won alone (see `Claims.alone`). */
  alone (job: JobId): boolean {
    return this.#held.get(job)?.alone === true
  }

  /**
   * Takes a won lease, confirmed until `confirmedUntil` (the claim's voters bar the job until the
   * claim's send time + TTR); with no `confirmedUntil` it was won alone, and is never fenced.
   */
  hold (job: JobId, epoch: number, ttrMs: number, confirmedUntil?: number): void {
    this.#held.set(job, {
      epoch, alone: confirmedUntil == null, ttrMs, renewedAt: -Infinity, acked: new Map(), confirmedUntil: confirmedUntil ?? Infinity
    })
  }

  /** Drops a lease; returns its epoch, if it was held. */
  drop (job: JobId): number | undefined {
    const epoch = this.#held.get(job)?.epoch
    this.#held.delete(job)
    return epoch
  }

  /**
   * The renewals to send now: of every held lease once any is due (or `now`), so that one
   * acknowledged batch confirms them all.
   */
  due (now = false): Renewal[] {
    const at = this.#clock.monotonic()
    if (!now && ![...this.#held.values()].some(held => at - held.renewedAt >= held.ttrMs / RENEWALS_PER_TTR)) return []
    const renewals: Renewal[] = []
    for (const [job, held] of this.#held) {
      held.renewedAt = at
      renewals.push([job, held.epoch, held.ttrMs])
    }
    return renewals
  }

  /** Remembers that batch `seq`, sent now, carried these renewals: its acknowledgements confirm them. */
  sent (seq: number, renewals: Renewal[]): void {
    this.#sent.set(seq, { at: this.#clock.monotonic(), jobs: renewals.map(([job, epoch]) => [job, epoch]) })
    if (this.#sent.size > MAX_REMEMBERED_RENEWALS) this.#sent.delete(this.#sent.keys().next().value as number)
  }

  /**
   * A peer acknowledged this node's batch `seq`: the leases renewed in it are confirmed by that
   * peer. A lease is confirmed until the send time of the latest renewal that `needed` peers have
   * all acknowledged, plus its TTR.
   */
  acknowledged (peer: string, seq: number, needed: number): void {
    const sent = this.#sent.get(seq)
    if (sent == null) return
    for (const [job, epoch] of sent.jobs) {
      const held = this.#held.get(job)
      if (held?.epoch !== epoch || (held.acked.get(peer) ?? -Infinity) >= sent.at) continue
      held.acked.set(peer, sent.at)
      const times = [...held.acked.values()].sort((a, b) => b - a)
      const confirmed = times[needed - 1]
      if (confirmed !== undefined) held.confirmedUntil = Math.max(held.confirmedUntil, confirmed + held.ttrMs)
    }
  }

  /** How long from now the others are known to keep the lease (Infinity if won alone), if held. */
  confirmedFor (job: JobId): number | undefined {
    const held = this.#held.get(job)
    if (held == null) return undefined
    return held.alone ? Infinity : held.confirmedUntil - this.#clock.monotonic()
  }
}
