import { randomBytes } from 'node:crypto'
import type { CoordinationStats } from '../../types.js'
import { MAX_BATCH_ENTRIES, emptyOutbox } from '../claim-batch.js'
import type { ClaimBatch, ClaimTransport, Outbox } from '../claim-batch.js'

/**
 * This node's side of the claims wire: what is queued for the next batch, the batches it
 * publishes (at most MAX_BATCH_ENTRIES per list each), and what they have cost.
 */
export class ClaimPublisher {
  /** Random per process start: with `seq`, lets receivers drop replays. */
  readonly boot = randomBytes(6).toString('hex')
  readonly #self: string
  readonly #transport: ClaimTransport
  #seq = 0
  #outbox: Outbox = emptyOutbox()
  readonly #counters: CoordinationStats = { batches: 0, claims: 0, claimsWon: 0, claimsLost: 0, votes: 0, renewals: 0, acks: 0 }

  constructor (self: string, transport: ClaimTransport) {
    this.#self = self
    this.#transport = transport
  }

  /** What goes out with the next batch. */
  get outbox (): Outbox {
    return this.#outbox
  }

  /** Publishes what is queued; `sent` hears of each batch before it goes out. */
  flush (sent: (batch: ClaimBatch) => void = () => {}): void {
    const outbox = this.#outbox
    this.#outbox = emptyOutbox()
    while (Object.values(outbox).some(list => list.length > 0)) {
      const batch: ClaimBatch = {
        v: 2,
        peer: this.#self,
        boot: this.boot,
        seq: ++this.#seq,
        claims: outbox.claims.splice(0, MAX_BATCH_ENTRIES),
        renews: outbox.renews.splice(0, MAX_BATCH_ENTRIES),
        releases: outbox.releases.splice(0, MAX_BATCH_ENTRIES),
        withdraws: outbox.withdraws.splice(0, MAX_BATCH_ENTRIES),
        refusals: outbox.refusals.splice(0, MAX_BATCH_ENTRIES),
        votes: outbox.votes.splice(0, MAX_BATCH_ENTRIES),
        acks: outbox.acks.splice(0, MAX_BATCH_ENTRIES)
      }
      sent(batch)
      this.#tally(batch)
      this.#transport.publish(batch)
    }
  }

  /** Counts a claim's outcome. */
  settled (won: boolean): void {
    this.#counters[won ? 'claimsWon' : 'claimsLost']++
  }

  stats (): CoordinationStats {
    return { ...this.#counters }
  }

  #tally (batch: ClaimBatch): void {
    const c = this.#counters
    c.batches++
    c.claims += batch.claims.length
    c.votes += batch.votes.length
    c.renewals += batch.renews.length
    c.acks += batch.acks.length
  }
}

/** Drops a batch that is not newer than the last one heard from its author in the same boot. */
export class ReplayFilter {
  readonly #last = new Map<string, { boot: string, seq: number }>()

  replayed (batch: ClaimBatch): boolean {
    const last = this.#last.get(batch.peer)
    if (last != null && last.boot === batch.boot && batch.seq <= last.seq) return true
    this.#last.set(batch.peer, { boot: batch.boot, seq: batch.seq })
    return false
  }
}
