import { randomBytes } from 'node:crypto'
import type { CoordinationStats, JobId } from '../../types.js'
import { MAX_BATCH_ENTRIES, emptyOutbox } from '../claim-batch.js'
import type { ClaimBatch, ClaimTransport, Outbox } from '../claim-batch.js'

/**
 * When a withdrawal or a release is sent again, after it first went out. Gossip can lose a message
 * for one recipient; a voter that missed a withdrawal keeps the lost claim's bar on the job for a
 * TTR, and once more members hold such bars than a quorum can spare, no claim of the job wins
 * (`npm run sim -- --loss 0.05`: jobs still not done after 600 s). Receivers take both twice alike.
 */
const RESEND_AFTER_MS = [250, 1000]

type Announcement = { list: 'withdraws' | 'releases', entry: [JobId, number] }

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
  /** Withdrawals and releases to send again, with the monotonic time each is due. */
  #resends: Array<Announcement & { at: number }> = []
  readonly #counters: CoordinationStats = { batches: 0, claims: 0, claimsWon: 0, claimsLost: 0, votes: 0, renewals: 0, acks: 0 }

  constructor (self: string, transport: ClaimTransport) {
    this.#self = self
    this.#transport = transport
  }

  /** What goes out with the next batch. */
  get outbox (): Outbox {
    return this.#outbox
  }

  /** Whether nothing is queued and no resend is due later. */
  get idle (): boolean {
    return this.#resends.length === 0 && Object.values(this.#outbox).every(list => list.length === 0)
  }

  /** Queues a withdrawal or a release, and its resends (RESEND_AFTER_MS from `now`). */
  announce ({ list, entry }: Announcement, now: number): void {
    this.#outbox[list].push(entry)
    for (const ms of RESEND_AFTER_MS) this.#resends.push({ list, entry, at: now + ms })
  }

  /** Queues the resends due by `now`. */
  resendDue (now: number): void {
    if (this.#resends.length === 0) return
    const later: Array<Announcement & { at: number }> = []
    for (const resend of this.#resends) {
      if (resend.at <= now) this.#outbox[resend.list].push(resend.entry)
      else later.push(resend)
    }
    this.#resends = later
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
