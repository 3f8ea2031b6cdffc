// Longer than 300 lines on purpose. What stands alone is already in claims/ (leases heard, leases held, ballots, group
// limits, backoff, the outbox, ranking); what is left is one state machine, a claim of this node and the votes, refusals,
// withdrawals and rival renewals that settle it, whose steps call one another: split further, one claim would be
// followed across files.
import createDebug from 'debug'
import type { Attempt, CoordinationStats, JobId, JobSpec } from '../types.js'
import type { ClaimBatch, ClaimTransport } from './claim-batch.js'
import { sleep } from '../clock.js'
import type { Clock } from '../clock.js'
import { ClaimBackoff } from './claims/backoff.js'
import { BallotBox } from './claims/ballot-box.js'
import type { Ballot } from './claims/ballot-box.js'
import { GroupLimits } from './claims/group-limits.js'
import type { Cap } from './claims/group-limits.js'
import { HeldLeases } from './claims/held-leases.js'
import { LeaseBook } from './claims/lease-book.js'
import type { Lease } from './claims/lease-book.js'
import { ClaimPublisher, ReplayFilter } from './claims/publisher.js'
import { claimRank, remember } from './claims/rank.js'

export { claimRank } from './claims/rank.js'
export type { Lease } from './claims/lease-book.js'

const log = createDebug('meshq:claims')

/**
 * Default claim window: how long the next-ranked node waits before it claims a job too. Safety does
 * not depend on it (votes decide); it only keeps nodes from competing for the same job.
 */
export const DEFAULT_CLAIM_WINDOW_MS = 100
/**
 * How often a batch of claims and renewals goes out at most. The tick runs only while there is
 * something to send, vote on, renew, resend or time out; an idle node does not tick (see `wake`).
 */
export const BATCH_INTERVAL_MS = 25

/** What the claimer knows of the other nodes: who is alive and could run a job. */
export interface PeerLoad {
  peer: string
  slots: number
  running: number
  draining: boolean
  tags: string[]
}

export interface ClaimsInit {
  self: string
  clock: Clock
  transport: ClaimTransport
  windowMs?: number
  /** Live peers other than this node (heard lately or connected), with their load: for ranking. */
  peers: () => PeerLoad[]
  /** How many members the quorum counts: the active members of the ledger's member list, this node included. */
  members: () => number
  /**
   * Whether every other active member has been silent for `windowMs` of this node's own awake time
   * (time this node's event loop was stalled does not count): the test for being a side of one.
   */
  othersSilentFor: (windowMs: number) => boolean
  /** Called with jobs whose lease just expired, so their state is derived again. */
  onExpired: (jobs: JobId[]) => void
  /** Called when another node releases a lease: a job of a limited group may now be claimed. */
  onReleased?: () => void
  /** Called when another node wins a job this node runs: this node must stop its copy. */
  onPreempted: (job: JobId, epoch: number) => void
  /** Whether this replica's ledger says the job may still be claimed at that epoch (not done, no attempt that high). */
  claimable?: (job: JobId, epoch: number) => boolean
  /** The highest attempt epoch this replica's ledger knows for the job. */
  knownEpoch?: (job: JobId) => number
  /** Whether this replica's ledger has the attempt of that epoch ended (or the job finished). */
  ended?: (job: JobId, epoch: number) => boolean
  /** The caps the job is under: its group's limit, its array's limit. */
  capsOf?: (job: JobId) => readonly Cap[]
  /** Random numbers in [0, 1) for backoffs (default Math.random; a seeded one makes a simulation repeatable). */
  random?: () => number
  /**
   * How long after its start this node neither votes nor claims (default CLAIM_DEADLINE_MS): votes
   * live in memory, so a node restarted while a claim it voted for was in flight must not vote
   * again in that claim's epoch; by the end of the quiet period every such claim has timed out.
   */
  quietMs?: number
}

/**
 * Votes a claim needs, this node's own included: a strict majority of the active members, so that
 * any two quorums share a member whatever anyone believes about who is live.
 */
export const quorumOf = (members: number): number => Math.floor(Math.max(1, members) / 2) + 1

/**
 * How long the other member of a two-node cluster must have been silent before this node acts
 * alone on a job with this TTR: at most half the TTR, so that a dead peer's job is taken over as
 * soon as its lease lapses, and at least a second (an ordinary stall is shorter).
 */
export const aloneWindowMs = (ttrMs: number): number => Math.min(10_000, Math.max(1000, ttrMs / 2))

interface PendingClaim {
  epoch: number
  needed: number
  /** Monotonic time the claim went out: its voters bar the job for its TTR from when they vote, which is later. */
  sentAt: number
  /** Members that said they do not back it (`refusals`). */
  refused: Set<string>
  settle: (won: boolean) => void
}

/** How long a node that hears no voter and is not alone waits before it gives up a claim. */
const NO_VOTERS_RETRY_MS = 1000
/** How long a claim may wait for its majority before it is withdrawn. */
export const CLAIM_DEADLINE_MS = 3000
/**
 * How long a claim keeps a node that did not vote for it from claiming the job too: only to avoid
 * competing claims (liveness). Voters bar the job for the claim's whole TTR.
 */
const CLAIM_HOLD_MS = CLAIM_DEADLINE_MS + 1000

/**
 * Leases on jobs, arbitrated over gossip. A node claims a job at an epoch one above the last
 * and publishes the claim; every node votes once per job and epoch, for the first claim it hears
 * (a claimant for itself). The claim that gathers the votes of a majority of the live nodes wins:
 * two claims cannot both win however slow gossip is, as long as the nodes agree on who is live.
 * A claim with no majority within the deadline is withdrawn and the job is claimed again later at
 * a higher epoch. The winner renews its lease every TTR/4; every node keeps the leases it hears of,
 * timed on its own monotonic clock, and treats a job whose lease lapsed as claimable again.
 */
export class Claims {
  private readonly init: ClaimsInit
  private readonly windowMs: number
  private readonly leases: LeaseBook
  private readonly held: HeldLeases
  private readonly ballots = new BallotBox()
  private readonly limits: GroupLimits
  private readonly backoff: ClaimBackoff
  private readonly publisher: ClaimPublisher
  private readonly replays = new ReplayFilter()
  /** Claims of this node waiting for a majority. */
  private readonly pending = new Map<JobId, PendingClaim>()
  /** The highest epoch this node has claimed, voted in or heard of, per job. */
  private readonly epochs = new Map<JobId, number>()
  private timer?: NodeJS.Timeout
  private started = false
  /** Monotonic ms until which this node neither votes nor claims (see `quietMs`). */
  private readonly quietUntil: number

  constructor (init: ClaimsInit) {
    this.init = init
    this.windowMs = init.windowMs ?? DEFAULT_CLAIM_WINDOW_MS
    this.quietUntil = init.clock.monotonic() + (init.quietMs ?? CLAIM_DEADLINE_MS)
    this.leases = new LeaseBook(init)
    this.held = new HeldLeases(init.clock)
    this.limits = new GroupLimits({ ...init, leases: this.leases, pending: () => this.pending.keys() })
    this.backoff = new ClaimBackoff(init.clock, init.random)
    this.publisher = new ClaimPublisher(init.self, init.transport)
    init.transport.subscribe(batch => { this.receive(batch) })
  }

  start (): void {
    this.started = true
    if (!this.idle()) this.wake()
  }

  /** Stops, after publishing what is queued (the releases of the runs just stopped, above all). */
  stop (): void {
    this.started = false
    clearInterval(this.timer)
    this.timer = undefined
    this.flush()
  }

  /**
   * Ticks every BATCH_INTERVAL_MS from now until `idle`: called wherever something is queued or
   * taken in (a claim, a lease held or released, a batch received). An idle node saves the 40
   * wake-ups a second of a tick with nothing to do; the first tick after a wake comes, as before,
   * within BATCH_INTERVAL_MS.
   */
  private wake (): void {
    if (!this.started || this.timer != null) return
    this.timer = setInterval(() => { this.tick() }, BATCH_INTERVAL_MS)
    this.timer.unref()
  }

  /**
   * Whether a tick has nothing to do: no claim of this node pending, no lease held (no renewals
   * due), no ballot queued, nothing queued or to resend, and no lease heard of that could lapse.
   */
  private idle (): boolean {
    return this.pending.size === 0 && this.held.size === 0 && !this.ballots.anyQueued && this.publisher.idle && !this.leases.anyRunning
  }

  /** The live lease on a job, if any: held, or released (see `LeaseBook.live`). */
  leaseOf (job: JobId): Lease | undefined {
    return this.leases.live(job)
  }

  /** Whether a lease keeps a job from being claimed, given the highest epoch this replica's ledger knows for it. */
  bars (job: JobId, knownEpoch: number): boolean {
    return this.leases.bars(job, knownEpoch)
  }

  /** Whether a remote attempt's lease is still held, as far as this node has heard. */
  alive (attempt: Attempt, ttrMs: number): boolean {
    return this.leases.alive(attempt, ttrMs)
  }

  /** Monotonic time before which this node should not claim the job: it just lost a claim of it. */
  retryAt (job: JobId): number {
    return this.backoff.retryAt(job)
  }

  /**
   * This node's place among the nodes that could run a job (rendezvous hashing), 0 if it ranks
   * first, and how many nodes take part (this node and the live peers), over the live peers as
   * they are now: read once, for ranking many jobs. Every node that agrees on who is live
   * computes the same order.
   */
  ranking (): { nodes: number, rankOf: (spec: JobSpec) => number } {
    const peers = this.init.peers()
    const rankOf = (spec: JobSpec): number => {
      // rank among the nodes able to run the job, not among those with a free slot right now: load
      // is gossiped every few seconds, and two nodes with different stale views would both rank first
      const mine = claimRank(spec.id, this.init.self)
      const able = (p: PeerLoad): boolean => !p.draining && p.slots >= spec.cores && spec.tags.every(t => p.tags.includes(t))
      return peers.filter(p => able(p) && claimRank(spec.id, p.peer) < mine).length
    }
    return { nodes: peers.length + 1, rankOf }
  }

  /**
   * How long a node of that rank waits, from when a job is ready, before it claims the job: a window
   * per rank, so that usually one node tries.
   */
  claimDelay (rank: number): number {
    return rank * this.windowMs
  }

  /**
   * The epoch for a new claim of a job: above every epoch this replica's ledger knows and every
   * epoch claimed or voted in here, so that a job whose claims all failed can be claimed again.
   */
  nextEpoch (job: JobId, knownEpoch: number): number {
    return Math.max(knownEpoch, this.epochs.get(job) ?? 0, this.leases.get(job)?.epoch ?? 0) + 1
  }

  /**
   * Whether a claim's epoch is below one this node knows for the job (claimed, voted in, leased or
   * recorded). Such a claim is never backed: a vote for it after a vote for the later claim would
   * let both win (their quorums share this voter, but the ballots are per epoch), and the later
   * holder's copy would start while the earlier one still runs.
   */
  private stale (job: JobId, epoch: number): boolean {
    return epoch < Math.max(this.epochs.get(job) ?? 0, this.leases.get(job)?.epoch ?? 0, this.init.knownEpoch?.(job) ?? 0)
  }

  private noteEpoch (job: JobId, epoch: number): void {
    if (epoch > (this.epochs.get(job) ?? 0)) remember(this.epochs, job, epoch)
  }

  /** The other nodes that are live, with their load as last gossiped. */
  livePeers (): PeerLoad[] {
    return this.init.peers()
  }

  /** Votes a claim needs now, this node's own included. */
  quorum (): number {
    return quorumOf(this.init.members())
  }

  /**
   * Whether this node may win a claim of a job with this TTR without anyone's vote: it is the only
   * active member, or one of two whose peer has been silent for `aloneWindowMs`. A two-node cluster
   * cannot tell a dead peer from a partition; it keeps working, and a partition can then run a job
   * on both sides (such runs are recorded `alone`). Three or more members never act alone.
   */
  alone (ttrMs: number): boolean {
    const members = this.init.members()
    return members <= 1 || (members === 2 && this.init.othersSilentFor(aloneWindowMs(ttrMs)))
  }

  /** Claims a job at an epoch; resolves true if this node won it (and now holds the lease). */
  async claim (job: JobId, epoch: number, ttrMs: number): Promise<boolean> {
    if (this.ballots.backs(job, epoch)) return false // this node already backs another claim of that epoch
    if (this.alone(ttrMs)) {
      this.hold(job, epoch, ttrMs)
      log('won claim of %s at epoch %d alone', job, epoch)
      return true
    }
    const quiet = this.quietUntil - this.init.clock.monotonic()
    if (quiet > 0) {
      // its own vote is a vote too: wait for the quiet period to end (see `quietMs`)
      await sleep(this.init.clock, quiet)
      if (this.ballots.backs(job, epoch)) return false
    }
    if (this.init.peers().length + 1 < this.quorum()) {
      // too few members within reach to make a quorum: try again later rather than wait out a deadline
      await sleep(this.init.clock, NO_VOTERS_RETRY_MS)
      return false
    }
    let claim: PendingClaim | undefined
    const won = await new Promise<boolean>(resolve => {
      const cancel = this.init.clock.after(CLAIM_DEADLINE_MS, () => { settle(false) })
      const settle = (won: boolean): void => {
        cancel()
        this.pending.delete(job)
        resolve(won)
      }
      claim = { epoch, needed: this.quorum(), sentAt: this.init.clock.monotonic(), refused: new Set(), settle }
      this.pending.set(job, claim)
      this.publisher.outbox.claims.push([job, epoch, ttrMs])
      this.consider({ job, epoch, candidate: this.init.self, ttrMs })
      this.flush()
      this.wake()
    })
    if (won) {
      this.hold(job, epoch, ttrMs, claim)
      this.backoff.won(job)
    } else {
      // the votes it got are void: their voters may vote again
      this.publisher.announce({ list: 'withdraws', entry: [job, epoch] }, this.init.clock.monotonic())
      this.withdrawn(job, epoch, this.init.self)
      this.backoff.lost(job)
      this.wake()
    }
    this.publisher.settled(won)
    log('%s claim of %s at epoch %d', won ? 'won' : 'lost', job, epoch)
    return won
  }

  /**
   * Notes a claim for this node's vote. Votes are cast at the next tick, for the best-ranked claim
   * heard by then, so that claims made at the same moment converge on one winner; a claimant whose
   * claim is not the best one it heard withdraws it. A vote moves only when the claim it went to is
   * withdrawn (see `withdrawn`): that claim can no longer win, so the vote is free again.
   */
  private consider (ballot: Ballot): void {
    const { job, epoch, candidate } = ballot
    this.noteEpoch(job, epoch)
    if (this.stale(job, epoch)) {
      if (candidate !== this.init.self) this.publisher.outbox.refusals.push([job, epoch, candidate])
      return
    }
    this.ballots.hear(ballot)
    if (this.ballots.voted(job, epoch) || this.init.clock.monotonic() < this.quietUntil) return
    if (candidate !== this.init.self && !this.supports(job, epoch, candidate)) {
      this.publisher.outbox.refusals.push([job, epoch, candidate])
      return
    }
    this.ballots.queue(ballot)
  }

  /**
   * Whether this node may vote for another node's claim: not while, as far as it knows, the job is
   * done, held by this node, or held by a third node under a lease that has neither lapsed nor been
   * released. So a job is taken over only when a majority agrees that its holder is gone.
   */
  private supports (job: JobId, epoch: number, candidate: string): boolean {
    if (this.held.has(job) || this.init.claimable?.(job, epoch) === false || this.limits.atLimit(job, true)) return false
    const lease = this.leases.live(job)
    // a rival claim of the same epoch: the ballots decide between them
    return lease == null || lease.peer === candidate || lease.epoch === epoch ||
      (lease.released === true && this.init.claimable?.(job, lease.epoch + 1) !== false && this.leases.recorded(job, lease.epoch))
  }

  /** The job's first cap (group or array limit) that already has as many jobs running or being claimed as it allows (see `GroupLimits`). */
  fullCap (job: JobId): Cap | undefined {
    return this.limits.fullCap(job)
  }

  atLimit (job: JobId): boolean {
    return this.fullCap(job) != null
  }

  private castBallots (): void {
    for (const ballot of this.ballots.takeQueued()) {
      const { job, epoch, candidate } = ballot
      if (this.stale(job, epoch)) continue // a later attempt was claimed since the ballot was queued
      const pending = this.pending.get(job)
      if (pending?.epoch === epoch && candidate !== this.init.self) pending.settle(false)
      if (candidate !== this.init.self) for (const other of this.limits.overtaken(job)) this.pending.get(other)?.settle(false)
      this.vote(ballot)
    }
  }

  /**
   * Casts this node's one vote of a job and epoch. A vote for another node bars the job here for
   * the claim's TTR: if the claim wins, its holder counts on this node not to back a takeover
   * before then (its lease is confirmed until the claim's send time + TTR).
   */
  private vote (ballot: Ballot): void {
    const { job, epoch, candidate, ttrMs } = ballot
    if (!this.ballots.cast(ballot)) return
    this.publisher.outbox.votes.push([job, epoch, candidate])
    if (candidate !== this.init.self) this.observe(job, { peer: candidate, epoch, expiresAt: this.init.clock.monotonic() + ttrMs }, true)
    this.count(job, epoch, candidate, this.init.self)
  }

  /** Adds a vote to the tally; settles this node's pending claim once a candidate has a majority. */
  private count (job: JobId, epoch: number, candidate: string, voter: string): void {
    const voters = this.ballots.tally(job, epoch, candidate, voter)
    const pending = this.pending.get(job)
    if (pending == null || pending.epoch !== epoch) return
    if (voters.size >= pending.needed) pending.settle(candidate === this.init.self)
    else this.giveUpIfHopeless(job, pending)
  }

  /**
   * Settles this node's pending claim as lost once it cannot reach its quorum: the members that
   * refused it or voted for better-ranked rival claims are too many. (Votes for worse-ranked
   * rivals come free: those claimants withdraw once they hear this claim.) Waiting out the
   * deadline would gain nothing.
   */
  private giveUpIfHopeless (job: JobId, pending: PendingClaim): void {
    const against = this.ballots.votersForBetter(job, pending.epoch, this.init.self)
    for (const voter of pending.refused) against.add(voter)
    if (this.init.members() - against.size < pending.needed) pending.settle(false)
  }

  /**
   * This node no longer runs the job. `recorded`: its attempt is in the ledger, which the others
   * will get; a released lease bars the job there until they have it. An attempt that was never
   * recorded (its start could not be written) is not announced: its lease lapses after the TTR.
   */
  release (job: JobId, { recorded = true } = {}): void {
    const epoch = this.held.drop(job)
    if (epoch == null) return
    this.leases.delete(job)
    if (recorded) this.publisher.announce({ list: 'releases', entry: [job, epoch] }, this.init.clock.monotonic())
    this.wake()
  }

  /**
   * Takes the lease of a won claim (or, with no claim, of a node alone, whom nobody can take over).
   * The claim's voters bar the job for its TTR from when they heard it: that much is confirmed.
   */
  private hold (job: JobId, epoch: number, ttrMs: number, claim?: PendingClaim): void {
    this.held.hold(job, epoch, ttrMs, claim == null ? undefined : claim.sentAt + ttrMs)
    this.leases.set(job, { peer: this.init.self, epoch, expiresAt: Infinity })
    this.publisher.outbox.renews.push(...this.held.due(true))
    this.wake()
  }

  /** Whether this node holds the job's lease from a claim it won alone (see `alone`). */
  heldAlone (job: JobId): boolean {
    return this.held.alone(job)
  }

  /**
   * How long the other nodes are known to keep this node's lease on a job (ms from now), or
   * undefined if this node does not hold it. A holder whose lease is about to go unconfirmed must
   * stop the job: a quorum without it may take the job over from then on. Infinity where no quorum
   * can form without this node (one or two members: see `alone`), and for leases won alone.
   */
  confirmedFor (job: JobId): number | undefined {
    const confirmed = this.held.confirmedFor(job)
    return confirmed !== undefined && this.init.members() <= 2 ? Infinity : confirmed
  }

  /**
   * Renews held leases, sends what is queued, and reports lapsed leases. Runs every
   * BATCH_INTERVAL_MS while there is work (see `wake`); stops once `idle`.
   */
  tick (): void {
    this.giveUpRecorded()
    this.castBallots()
    this.publisher.outbox.renews.push(...this.held.due())
    this.publisher.resendDue(this.init.clock.monotonic())
    this.flush()
    const lapsed = this.leases.lapse()
    if (lapsed.length > 0) this.init.onExpired(lapsed)
    if (this.timer != null && this.idle()) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }

  /**
   * Gives up this node's claims whose epoch the ledger already has an attempt of (or a later one):
   * another node won it, and its renewals may never come (it can die right after its win).
   */
  private giveUpRecorded (): void {
    for (const [job, pending] of this.pending) {
      if ((this.init.knownEpoch?.(job) ?? 0) >= pending.epoch) pending.settle(false)
    }
  }

  /** Publishes what is queued; the renewals in each batch wait for their acknowledgements. */
  private flush (): void {
    this.publisher.flush(batch => { if (batch.renews.length > 0) this.held.sent(batch.seq, batch.renews) })
  }

  /** What this node's claims have cost so far. */
  stats (): CoordinationStats {
    return this.publisher.stats()
  }

  private receive (batch: ClaimBatch): void {
    if (batch.peer === this.init.self || this.replays.replayed(batch)) return
    const now = this.init.clock.monotonic()
    // releases first: a node that ends one job of a limited group and claims the next in one batch
    // must not be refused because of the job it just released
    for (const [job, epoch] of batch.releases) this.leases.released(job, batch.peer, epoch)
    if (batch.releases.length > 0) this.init.onReleased?.()
    for (const [job, epoch, ttrMs] of batch.renews) this.observe(job, { peer: batch.peer, epoch, expiresAt: now + ttrMs }, true)
    for (const [job, epoch] of batch.withdraws) this.withdrawn(job, epoch, batch.peer)
    for (const [job, epoch, ttrMs] of batch.claims) {
      // before the claim is noted: the vote looks at the lease as it was
      this.consider({ job, epoch, candidate: batch.peer, ttrMs })
      // a claim keeps this node from claiming the job too until it is decided; the winner's renewal follows
      this.observe(job, { peer: batch.peer, epoch, expiresAt: now + CLAIM_HOLD_MS }, false)
    }
    for (const [job, epoch, candidate] of batch.votes) this.count(job, epoch, candidate, batch.peer)
    for (const [job, epoch, candidate] of batch.refusals) this.refused(job, epoch, candidate, batch.peer)
    if (batch.renews.length > 0) this.publisher.outbox.acks.push([batch.peer, batch.boot, batch.seq])
    for (const [peer, boot, seq] of batch.acks) {
      // with this node, a quorum of the members as they are now
      if (peer === this.init.self && boot === this.publisher.boot) this.held.acknowledged(batch.peer, seq, this.quorum() - 1)
    }
    this.wake()
  }

  /**
   * A claim was withdrawn: it never wins (its claimant settled it lost), so the votes it got are
   * void. Its bar on the job is lifted, and a vote this node gave it is free again: it goes to the
   * best claim of that epoch still standing, at the next tick.
   */
  private withdrawn (job: JobId, epoch: number, candidate: string): void {
    this.leases.withdrawn(job, candidate, epoch)
    for (const ballot of this.ballots.withdraw(job, epoch, candidate)) this.consider(ballot)
  }

  /** A member does not back a claim: if it is this node's, it may now be hopeless. */
  private refused (job: JobId, epoch: number, candidate: string, voter: string): void {
    const pending = this.pending.get(job)
    if (candidate !== this.init.self || pending?.epoch !== epoch) return
    pending.refused.add(voter)
    this.giveUpIfHopeless(job, pending)
  }

  /** Takes in another node's claim or renewal (see `LeaseBook.observe`), and what follows for this node's own claims and leases. */
  private observe (job: JobId, rival: Lease, renewal: boolean): void {
    if (!this.leases.observe(job, rival, renewal, this.held.has(job))) return
    const pending = this.pending.get(job)
    if (pending != null && rival.epoch > pending.epoch) pending.settle(false)
    const heldEpoch = this.held.epochOf(job)
    // only a won higher epoch displaces a holder: a rival of the same epoch cannot have had a majority
    if (renewal && heldEpoch !== undefined && rival.epoch > heldEpoch) {
      this.held.drop(job)
      this.init.onPreempted(job, heldEpoch)
    }
  }
}
