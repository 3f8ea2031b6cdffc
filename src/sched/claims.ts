import { createHash, randomBytes } from 'node:crypto'
import createDebug from 'debug'
import type { Attempt, CoordinationStats, JobId, JobSpec } from '../types.js'
import { MAX_BATCH_ENTRIES, emptyOutbox } from './claim-batch.js'
import type { ClaimBatch, ClaimTransport, Outbox } from './claim-batch.js'
import { sleep } from '../clock.js'
import type { Clock } from '../clock.js'

const log = createDebug('meshq:claims')

/**
 * Default claim window: how long the next-ranked node waits before it claims a job too. Safety does
 * not depend on it (votes decide); it only keeps nodes from competing for the same job.
 */
export const DEFAULT_CLAIM_WINDOW_MS = 100
/** How often a batch of claims and renewals goes out at most. */
export const BATCH_INTERVAL_MS = 25

/** What the claimer knows of the other nodes: who is alive and could run a job. */
export interface PeerLoad {
  peer: string
  slots: number
  running: number
  draining: boolean
  tags: string[]
}

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
  /** The job's group, for group limits. */
  groupOf?: (job: JobId) => string | undefined
  /** Random numbers in [0, 1) for backoffs (default Math.random; a seeded one makes a simulation repeatable). */
  random?: () => number
  /** The cap on a group's jobs running at once across the mesh (`meshq limit`), if any. */
  limitOf?: (group: string) => number | undefined
  /**
   * How long after its start this node neither votes nor claims (default CLAIM_DEADLINE_MS): votes
   * live in memory, so a node restarted while a claim it voted for was in flight must not vote
   * again in that claim's epoch; by the end of the quiet period every such claim has timed out.
   */
  quietMs?: number
}

/** Rendezvous rank of a peer for a job: the peer with the lowest hash of (job, peer) claims first. */
export function claimRank (job: string, peer: string): string {
  return createHash('sha256').update(`${job}\n${peer}`).digest('hex')
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

/**
 * Renewals per TTR. Others may see a lease lapse TTR after the last renewal they heard, which
 * can be TTR/4 older than a stall of its holder; the watchdog fences a stalled holder after TTR/2,
 * so a quarter of the TTR is left for the kill.
 */
const RENEWALS_PER_TTR = 4
/**
 * How long a node waits before it claims a job again after losing a claim of it: the others may
 * know of a lease it has not heard of yet (liveness only; it keeps a node from spinning on claims
 * that are refused at once).
 */
const LOST_CLAIM_BACKOFF_MS = 1000
const MAX_LOST_CLAIM_BACKOFF_MS = 10_000
/** How long a node that hears no voter and is not alone waits before it gives up a claim. */
const NO_VOTERS_RETRY_MS = 1000
/** How long a claim may wait for its majority before it is withdrawn. */
export const CLAIM_DEADLINE_MS = 3000
/**
 * How long a claim keeps a node that did not vote for it from claiming the job too: only to avoid
 * competing claims (liveness). Voters bar the job for the claim's whole TTR.
 */
const CLAIM_HOLD_MS = CLAIM_DEADLINE_MS + 1000
/** Renewal batches remembered for their acknowledgements. */
const MAX_REMEMBERED_RENEWALS = 1000
/** Votes remembered, oldest forgotten first: far more than can be in flight. */
const MAX_REMEMBERED_VOTES = 100_000
const voteKey = (job: string, epoch: number): string => `${job}:${epoch}`

interface Ballot { job: JobId, epoch: number, candidate: string, ttrMs: number }

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
  private readonly boot = randomBytes(6).toString('hex')
  private seq = 0
  private readonly leases = new Map<JobId, Lease>()
  /** Claims of this node waiting for a majority. */
  private readonly pending = new Map<JobId, PendingClaim>()
  /** Votes heard per `job:epoch`: candidate -> voters. */
  private readonly tallies = new Map<string, Map<string, Set<string>>>()
  /** This node's vote per `job:epoch`. */
  private readonly voted = new Map<string, string>()
  /** The highest epoch this node has claimed, voted in or heard of, per job. */
  private readonly epochs = new Map<JobId, number>()
  /** Per job, the monotonic time before which this node does not claim it again (it lost a claim of it). */
  private readonly backoff = new Map<JobId, { until: number, losses: number }>()
  /** Every claim heard per `job:epoch` and not withdrawn: where a vote that comes free goes. */
  private readonly heard = new Map<string, Map<string, Ballot>>()
  /** Claims heard since the last tick, per `job:epoch`: the best-ranked one gets this node's vote. */
  private readonly ballots = new Map<string, Ballot>()
  /** Jobs this node holds, with their TTR, for renewals. */
  private readonly held = new Map<JobId, HeldLease>()
  /** The renewals in each batch this node sent, by seq, with when it went out. */
  private readonly renewalsSent = new Map<number, { at: number, jobs: Array<[JobId, number]> }>()
  private readonly lastSeq = new Map<string, { boot: string, seq: number }>()
  private outbox: Outbox = emptyOutbox()
  private timer?: NodeJS.Timeout
  private readonly counters: CoordinationStats = { batches: 0, claims: 0, claimsWon: 0, claimsLost: 0, votes: 0, renewals: 0, acks: 0 }

  /** Monotonic ms until which this node neither votes nor claims (see `quietMs`). */
  private readonly quietUntil: number

  constructor (init: ClaimsInit) {
    this.init = init
    this.windowMs = init.windowMs ?? DEFAULT_CLAIM_WINDOW_MS
    this.quietUntil = init.clock.monotonic() + (init.quietMs ?? CLAIM_DEADLINE_MS)
    init.transport.subscribe(batch => { this.receive(batch) })
  }

  start (): void {
    this.timer = setInterval(() => { this.tick() }, BATCH_INTERVAL_MS)
    this.timer.unref()
  }

  /** Stops, after publishing what is queued (the releases of the runs just stopped, above all). */
  stop (): void {
    clearInterval(this.timer)
    this.flush()
  }

  /**
   * The live lease on a job, if any: held, or released. A released lease does not lapse with time:
   * its holder has recorded the attempt's end, which this replica will get, and until it does the
   * job must not look free here.
   */
  leaseOf (job: JobId): Lease | undefined {
    const lease = this.leases.get(job)
    return lease != null && (lease.released === true || lease.expiresAt > this.init.clock.monotonic()) ? lease : undefined
  }

  /**
   * Whether a lease keeps a job from being claimed, given the highest epoch this replica's
   * ledger knows for it: a released lease stops counting once its attempt's end is recorded here.
   */
  bars (job: JobId, knownEpoch: number): boolean {
    const lease = this.leaseOf(job)
    return lease != null && (lease.released !== true || knownEpoch < lease.epoch || !this.recorded(job, lease.epoch))
  }

  /** Whether a remote attempt's lease is still held, as far as this node has heard. */
  alive (attempt: Attempt, ttrMs: number): boolean {
    const lease = this.leases.get(attempt.job)
    const now = this.init.clock.monotonic()
    if (lease == null || lease.epoch < attempt.epoch) {
      // first news of this attempt: it gets one TTR from now to show a renewal
      this.leases.set(attempt.job, { peer: attempt.node, epoch: attempt.epoch, expiresAt: now + ttrMs })
      return true
    }
    if (lease.epoch > attempt.epoch || lease.peer !== attempt.node) return false
    return lease.expiresAt > now
  }

  /**
   * How long this node should wait before claiming a job: 0 if it ranks first among the nodes
   * that could run it (rendezvous hashing), a window per rank otherwise, so that usually one node tries.
   */
  /**
   * After a lost claim: waits before claiming the job again, doubling with each loss in a row and
   * with a random part, so that many nodes that keep colliding on one job (all claiming it the
   * moment a dead holder's lease lapses, say) spread out instead of colliding again.
   */
  private backOff (job: JobId): void {
    const losses = (this.backoff.get(job)?.losses ?? 0) + 1
    const delay = Math.min(MAX_LOST_CLAIM_BACKOFF_MS, LOST_CLAIM_BACKOFF_MS * 2 ** (losses - 1)) * (0.5 + (this.init.random ?? Math.random)())
    this.backoff.delete(job) // re-inserted last: the oldest entries are the first forgotten
    this.backoff.set(job, { until: this.init.clock.monotonic() + delay, losses })
    if (this.backoff.size > MAX_REMEMBERED_VOTES) this.backoff.delete(this.backoff.keys().next().value as JobId)
  }

  /** Monotonic time before which this node should not claim the job: it just lost a claim of it. */
  retryAt (job: JobId): number {
    return this.backoff.get(job)?.until ?? 0
  }

  claimDelay (spec: JobSpec): number {
    // rank among the nodes able to run the job, not among those with a free slot right now: load
    // is gossiped every few seconds, and two nodes with different stale views would both rank first
    const candidates = this.init.peers().filter(p => !p.draining && p.slots >= spec.cores && spec.tags.every(t => p.tags.includes(t)))
    const mine = claimRank(spec.id, this.init.self)
    const rank = candidates.filter(p => claimRank(spec.id, p.peer) < mine).length
    return rank * this.windowMs
  }

  /**
   * The epoch for a new claim of a job: above every epoch this replica's ledger knows and every
   * epoch claimed or voted in here, so that a job whose claims all failed can be claimed again.
   */
  nextEpoch (job: JobId, knownEpoch: number): number {
    return Math.max(knownEpoch, this.epochs.get(job) ?? 0, this.leases.get(job)?.epoch ?? 0) + 1
  }

  private noteEpoch (job: JobId, epoch: number): void {
    if (epoch <= (this.epochs.get(job) ?? 0)) return
    this.epochs.set(job, epoch)
    if (this.epochs.size > MAX_REMEMBERED_VOTES) this.epochs.delete(this.epochs.keys().next().value as JobId)
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
    const key = voteKey(job, epoch)
    if (this.voted.has(key) || this.ballots.has(key)) return false // this node already backs another claim of that epoch
    if (this.alone(ttrMs)) {
      this.hold(job, epoch, ttrMs)
      log('won claim of %s at epoch %d alone', job, epoch)
      return true
    }
    const quiet = this.quietUntil - this.init.clock.monotonic()
    if (quiet > 0) {
      // its own vote is a vote too: wait for the quiet period to end (see `quietMs`)
      await sleep(this.init.clock, quiet)
      if (this.voted.has(key) || this.ballots.has(key)) return false
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
      this.outbox.claims.push([job, epoch, ttrMs])
      this.consider({ job, epoch, candidate: this.init.self, ttrMs })
      this.flush()
    })
    if (won) {
      this.hold(job, epoch, ttrMs, claim)
      this.backoff.delete(job)
    } else {
      this.outbox.withdraws.push([job, epoch]) // the votes it got are void: their voters may vote again
      this.withdrawn(job, epoch, this.init.self)
      this.backOff(job)
    }
    this.counters[won ? 'claimsWon' : 'claimsLost']++
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
    const key = voteKey(job, epoch)
    this.remember(key, ballot)
    if (this.voted.has(key) || this.init.clock.monotonic() < this.quietUntil) return
    if (candidate !== this.init.self && !this.supports(job, epoch, candidate)) {
      this.outbox.refusals.push([job, epoch, candidate])
      return
    }
    const current = this.ballots.get(key)
    if (current == null || claimRank(job, candidate) < claimRank(job, current.candidate)) this.ballots.set(key, ballot)
  }

  /**
   * Whether this node may vote for another node's claim: not while, as far as it knows, the job is
   * done, held by this node, or held by a third node under a lease that has neither lapsed nor been
   * released. So a job is taken over only when a majority agrees that its holder is gone.
   */
  private supports (job: JobId, epoch: number, candidate: string): boolean {
    if (this.held.has(job) || this.init.claimable?.(job, epoch) === false || this.atLimit(job, true)) return false
    const lease = this.leaseOf(job)
    return lease == null || lease.peer === candidate || lease.epoch >= epoch ||
      (lease.released === true && this.init.claimable?.(job, lease.epoch + 1) !== false && this.recorded(job, lease.epoch))
  }

  /**
   * Whether the job's group already has as many jobs running or being claimed as its limit allows,
   * as far as this node knows. Voters check it too, so that a claim over the limit finds no majority.
   * `forVote`: this node's own pending claims count only if their job sorts before this one, so
   * that two nodes claiming two jobs of a full group at once do not each refuse the other's claim.
   */
  atLimit (job: JobId, forVote = false): boolean {
    const rule = this.limitRule(job)
    return rule != null && this.taken(rule.group, job, forVote ? other => other < job : () => true) >= rule.limit
  }

  private limitRule (job: JobId): { group: string, limit: number } | undefined {
    const group = this.init.groupOf?.(job)
    const limit = group == null ? undefined : this.init.limitOf?.(group)
    return group == null || limit == null ? undefined : { group, limit }
  }

  /** Jobs of the group other than `job` under a live lease, plus this node's pending claims that `pending` counts. */
  private taken (group: string, job: JobId, pending: (other: JobId) => boolean): number {
    const now = this.init.clock.monotonic()
    const inGroup = (other: JobId): boolean => other !== job && this.init.groupOf?.(other) === group
    let count = 0
    for (const [other, lease] of this.leases) if (lease.released !== true && lease.expiresAt > now && inGroup(other)) count++
    for (const other of this.pending.keys()) if (!this.leases.has(other) && inGroup(other) && pending(other)) count++
    return count
  }

  /**
   * Before voting for a claim of `job`: withdraws this node's own pending claims of the same group
   * that sort after it, if together they would go over the group's limit. The vote goes to the
   * earlier job, so that of two crossing claims in a full group, one wins.
   */
  private yieldTo (job: JobId): void {
    const rule = this.limitRule(job)
    if (rule == null) return
    const later = [...this.pending.keys()].filter(other => other > job && this.init.groupOf?.(other) === rule.group)
    if (later.length > 0 && this.taken(rule.group, job, other => other < job) + 1 + later.length > rule.limit) {
      for (const other of later) this.pending.get(other)?.settle(false)
    }
  }

  /**
   * Whether this replica's ledger has the end of the attempt at `epoch` of the job (or a later
   * attempt): its start is not enough, since a released lease whose end has not arrived yet is a
   * job that may be done (on a loaded mesh, 10 nodes on 2 cores, a job done 3 s before was claimed
   * and run again by voters that had only its start).
   */
  private recorded (job: JobId, epoch: number): boolean {
    return (this.init.knownEpoch?.(job) ?? epoch) > epoch || (this.init.ended?.(job, epoch) ?? true)
  }

  private castBallots (): void {
    for (const ballot of this.ballots.values()) {
      const { job, epoch, candidate } = ballot
      const pending = this.pending.get(job)
      if (pending?.epoch === epoch && candidate !== this.init.self) pending.settle(false)
      if (candidate !== this.init.self) this.yieldTo(job)
      this.vote(ballot)
    }
    this.ballots.clear()
  }

  /**
   * Casts this node's one vote of a job and epoch. A vote for another node bars the job here for
   * the claim's TTR: if the claim wins, its holder counts on this node not to back a takeover
   * before then (its lease is confirmed until the claim's send time + TTR).
   */
  private vote ({ job, epoch, candidate, ttrMs }: Ballot): void {
    const key = voteKey(job, epoch)
    if (this.voted.has(key)) return
    this.voted.set(key, candidate)
    if (this.voted.size > MAX_REMEMBERED_VOTES) this.voted.delete(this.voted.keys().next().value as string)
    this.outbox.votes.push([job, epoch, candidate])
    if (candidate !== this.init.self) this.observe(job, { peer: candidate, epoch, expiresAt: this.init.clock.monotonic() + ttrMs }, true)
    this.count(job, epoch, candidate, this.init.self)
  }

  /** Adds a vote to the tally; settles this node's pending claim once a candidate has a majority. */
  private count (job: JobId, epoch: number, candidate: string, voter: string): void {
    const key = voteKey(job, epoch)
    let tally = this.tallies.get(key)
    if (tally == null) {
      this.tallies.set(key, tally = new Map())
      if (this.tallies.size > MAX_REMEMBERED_VOTES) this.tallies.delete(this.tallies.keys().next().value as string)
    }
    let voters = tally.get(candidate)
    if (voters == null) tally.set(candidate, voters = new Set())
    voters.add(voter)
    const pending = this.pending.get(job)
    if (pending == null || pending.epoch !== epoch) return
    if (voters.size >= pending.needed) pending.settle(candidate === this.init.self)
    else this.giveUpIfHopeless(job, key, pending)
  }

  /**
   * Settles this node's pending claim as lost once it cannot reach its quorum: the members that
   * refused it or voted for better-ranked rival claims are too many. (Votes for worse-ranked
   * rivals come free: those claimants withdraw once they hear this claim.) Waiting out the
   * deadline would gain nothing.
   */
  private giveUpIfHopeless (job: JobId, key: string, pending: PendingClaim): void {
    const mine = claimRank(job, this.init.self)
    const against = new Set(pending.refused)
    for (const [candidate, voters] of this.tallies.get(key) ?? []) {
      if (candidate !== this.init.self && claimRank(job, candidate) < mine) for (const voter of voters) against.add(voter)
    }
    if (this.init.members() - against.size < pending.needed) pending.settle(false)
  }

  /**
   * This node no longer runs the job. `recorded`: its attempt is in the ledger, which the others
   * will get; a released lease bars the job there until they have it. An attempt that was never
   * recorded (its start could not be written) is not announced: its lease lapses after the TTR.
   */
  release (job: JobId, { recorded = true } = {}): void {
    const held = this.held.get(job)
    if (held == null) return
    this.held.delete(job)
    this.leases.delete(job)
    if (recorded) this.outbox.releases.push([job, held.epoch])
  }

  /**
   * Takes the lease of a won claim (or, with no claim, of a node alone, whom nobody can take over).
   * The claim's voters bar the job for CLAIM_HOLD_MS from when they heard it: that much is confirmed.
   */
  private hold (job: JobId, epoch: number, ttrMs: number, claim?: PendingClaim): void {
    const confirmedUntil = claim == null ? Infinity : claim.sentAt + ttrMs
    this.held.set(job, { epoch, alone: claim == null, ttrMs, renewedAt: -Infinity, acked: new Map(), confirmedUntil })
    this.leases.set(job, { peer: this.init.self, epoch, expiresAt: Infinity })
    this.renewDue(true)
  }

  /** Whether this node holds the job's lease from a claim it won alone (see `alone`). */
  heldAlone (job: JobId): boolean {
    return this.held.get(job)?.alone === true
  }

  /**
   * How long the other nodes are known to keep this node's lease on a job (ms from now), or
   * undefined if this node does not hold it. A holder whose lease is about to go unconfirmed must
   * stop the job: a quorum without it may take the job over from then on. Infinity where no quorum
   * can form without this node (one or two members: see `alone`), and for leases won alone.
   */
  confirmedFor (job: JobId): number | undefined {
    const held = this.held.get(job)
    if (held == null) return undefined
    if (held.alone || this.init.members() <= 2) return Infinity
    return held.confirmedUntil - this.init.clock.monotonic()
  }

  /**
   * Queues renewals of every held lease once any is due (or `now`), so that one acknowledged
   * batch confirms them all.
   */
  private renewDue (now = false): void {
    const at = this.init.clock.monotonic()
    if (!now && ![...this.held.values()].some(held => at - held.renewedAt >= held.ttrMs / RENEWALS_PER_TTR)) return
    for (const [job, held] of this.held) {
      held.renewedAt = at
      this.outbox.renews.push([job, held.epoch, held.ttrMs])
    }
  }

  /** A peer acknowledged this node's batch `seq`: the leases renewed in it are confirmed by that peer. */
  private confirm (peer: string, seq: number): void {
    const sent = this.renewalsSent.get(seq)
    if (sent == null) return
    for (const [job, epoch] of sent.jobs) {
      const held = this.held.get(job)
      if (held?.epoch !== epoch || (held.acked.get(peer) ?? -Infinity) >= sent.at) continue
      held.acked.set(peer, sent.at)
      // the send time of the latest renewal that enough peers have all acknowledged: with this
      // node, a quorum of the members as they are now
      const needed = this.quorum() - 1
      const times = [...held.acked.values()].sort((a, b) => b - a)
      const confirmed = times[needed - 1]
      if (confirmed !== undefined) held.confirmedUntil = Math.max(held.confirmedUntil, confirmed + held.ttrMs)
    }
  }

  /** Renews held leases, sends what is queued, and reports lapsed leases. Runs every BATCH_INTERVAL_MS. */
  tick (): void {
    this.castBallots()
    const now = this.init.clock.monotonic()
    this.renewDue()
    this.flush()
    const expired: JobId[] = []
    for (const [job, lease] of this.leases) {
      if (lease.released === true && lease.expiresAt < now - FORGET_LEASES_AFTER_MS) this.leases.delete(job)
      if (lease.expiresAt > now || lease.released === true) continue
      if (lease.expired !== true) {
        lease.expired = true
        expired.push(job)
      } else if (lease.expiresAt < now - FORGET_LEASES_AFTER_MS) {
        this.leases.delete(job)
      }
    }
    if (expired.length > 0) this.init.onExpired(expired)
  }

  /** Publishes what is queued, in batches small enough for receivers to accept. */
  private flush (): void {
    const outbox = this.outbox
    this.outbox = emptyOutbox()
    while (Object.values(outbox).some(list => list.length > 0)) {
      const batch: ClaimBatch = {
        v: 2,
        peer: this.init.self,
        boot: this.boot,
        seq: ++this.seq,
        claims: outbox.claims.splice(0, MAX_BATCH_ENTRIES),
        renews: outbox.renews.splice(0, MAX_BATCH_ENTRIES),
        releases: outbox.releases.splice(0, MAX_BATCH_ENTRIES),
        withdraws: outbox.withdraws.splice(0, MAX_BATCH_ENTRIES),
        refusals: outbox.refusals.splice(0, MAX_BATCH_ENTRIES),
        votes: outbox.votes.splice(0, MAX_BATCH_ENTRIES),
        acks: outbox.acks.splice(0, MAX_BATCH_ENTRIES)
      }
      if (batch.renews.length > 0) this.rememberRenewals(batch)
      this.tally(batch)
      this.init.transport.publish(batch)
    }
  }

  /** What this node's claims have cost so far. */
  stats (): CoordinationStats {
    return { ...this.counters }
  }

  private tally (batch: ClaimBatch): void {
    const c = this.counters
    c.batches++
    c.claims += batch.claims.length
    c.votes += batch.votes.length
    c.renewals += batch.renews.length
    c.acks += batch.acks.length
  }

  private rememberRenewals (batch: ClaimBatch): void {
    this.renewalsSent.set(batch.seq, { at: this.init.clock.monotonic(), jobs: batch.renews.map(([job, epoch]) => [job, epoch]) })
    if (this.renewalsSent.size > MAX_REMEMBERED_RENEWALS) this.renewalsSent.delete(this.renewalsSent.keys().next().value as number)
  }

  private receive (batch: ClaimBatch): void {
    if (batch.peer === this.init.self || this.isReplay(batch)) return
    const now = this.init.clock.monotonic()
    // releases first: a node that ends one job of a limited group and claims the next in one batch
    // must not be refused because of the job it just released
    for (const [job, epoch] of batch.releases) {
      const lease = this.leases.get(job)
      if (lease?.peer === batch.peer && lease.epoch === epoch) lease.released = true
    }
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
    if (batch.renews.length > 0) this.outbox.acks.push([batch.peer, batch.boot, batch.seq])
    for (const [peer, boot, seq] of batch.acks) if (peer === this.init.self && boot === this.boot) this.confirm(batch.peer, seq)
  }

  /**
   * A claim was withdrawn: it never wins (its claimant settled it lost), so the votes it got are
   * void. Its bar on the job is lifted, and a vote this node gave it is free again: it goes to the
   * best claim of that epoch still standing, at the next tick.
   */
  private withdrawn (job: JobId, epoch: number, candidate: string): void {
    const key = voteKey(job, epoch)
    this.forget(job, candidate, epoch)
    this.tallies.get(key)?.delete(candidate)
    const heard = this.heard.get(key)
    heard?.delete(candidate)
    if (this.voted.get(key) !== candidate) return
    this.voted.delete(key)
    for (const ballot of heard?.values() ?? []) this.consider(ballot)
  }

  /** A member does not back a claim: if it is this node's, it may now be hopeless. */
  private refused (job: JobId, epoch: number, candidate: string, voter: string): void {
    const pending = this.pending.get(job)
    if (candidate !== this.init.self || pending?.epoch !== epoch) return
    pending.refused.add(voter)
    this.giveUpIfHopeless(job, voteKey(job, epoch), pending)
  }

  /** Keeps the claims heard per job and epoch, for votes that come free (`withdrawn`). */
  private remember (key: string, ballot: Ballot): void {
    let heard = this.heard.get(key)
    if (heard == null) {
      this.heard.set(key, heard = new Map())
      if (this.heard.size > MAX_REMEMBERED_VOTES) this.heard.delete(this.heard.keys().next().value as string)
    }
    heard.set(ballot.candidate, ballot)
  }

  /**
   * Lifts the bar a withdrawn claim put on the job here (a won lease is never withdrawn). The record stays, as lapsed: deleted, it would let an older open attempt of the job
   * look new here and be given a fresh TTR (`alive`), and a dead holder's job would never be free.
   */
  private forget (job: JobId, peer: string, epoch: number): void {
    const lease = this.leases.get(job)
    if (lease?.peer !== peer || lease.epoch !== epoch || lease.released === true) return
    lease.expiresAt = Math.min(lease.expiresAt, this.init.clock.monotonic())
    lease.expired = true
  }

  /**
   * Takes in another node's claim or renewal. A renewal comes from the winner of its epoch and
   * replaces any claim of that epoch; a claim only marks a job nobody is known to hold at that epoch.
   */
  private observe (job: JobId, rival: Lease, renewal: boolean): void {
    const current = this.leases.get(job)
    // a released lease stays released: its renewal may come in the same batch as the release
    if (current?.released === true && current.peer === rival.peer && current.epoch === rival.epoch) return
    if (current != null && (rival.epoch < current.epoch ||
      (rival.epoch === current.epoch && current.peer !== rival.peer && (!renewal || this.held.has(job))))) return
    // a mere claim does not displace a live lease: only the winner's renewal does
    const live = current != null && current.peer !== rival.peer && current.expiresAt > this.init.clock.monotonic() && current.released !== true
    if (!renewal && live) return
    this.leases.set(job, rival)
    const pending = this.pending.get(job)
    if (pending != null && rival.epoch > pending.epoch) pending.settle(false)
    const held = this.held.get(job)
    // only a won higher epoch displaces a holder: a rival of the same epoch cannot have had a majority
    if (renewal && held != null && rival.epoch > held.epoch) {
      this.held.delete(job)
      this.init.onPreempted(job, held.epoch)
    }
  }

  private isReplay (batch: ClaimBatch): boolean {
    const last = this.lastSeq.get(batch.peer)
    if (last != null && last.boot === batch.boot && batch.seq <= last.seq) return true
    this.lastSeq.set(batch.peer, { boot: batch.boot, seq: batch.seq })
    return false
  }
}
