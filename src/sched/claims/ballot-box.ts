import type { JobId } from '../../types.js'
import { claimRank, remember, voteKey } from './rank.js'

/** A claim as a voter sees it: who claims which attempt, and for how long a vote for it bars the job. */
export interface Ballot { job: JobId, epoch: number, candidate: string, ttrMs: number }

/**
 * This node's votes and the votes it heard. A node votes once per job and epoch, for the
 * best-ranked claim it heard by its next tick; a vote moves only when the claim it went to is
 * withdrawn (that claim can no longer win, so the vote is free again).
 */
export class BallotBox {
  /** Votes heard per `job:epoch`: candidate -> voters. */
  readonly #tallies = new Map<string, Map<string, Set<string>>>()
  /** This node's vote per `job:epoch`. */
  readonly #voted = new Map<string, string>()
  /** Every claim heard per `job:epoch` and not withdrawn: where a vote that comes free goes. */
  readonly #heard = new Map<string, Map<string, Ballot>>()
  /** Claims heard since the last tick, per `job:epoch`: the best-ranked one gets this node's vote. */
  readonly #queued = new Map<string, Ballot>()

  /** Whether this node already backs a claim of that job and epoch, or is about to. */
  backs (job: JobId, epoch: number): boolean {
    const key = voteKey(job, epoch)
    return this.#voted.has(key) || this.#queued.has(key)
  }

  voted (job: JobId, epoch: number): boolean {
    return this.#voted.has(voteKey(job, epoch))
  }

  /** Keeps a claim heard, for votes that come free (`withdraw`). */
  hear (ballot: Ballot): void {
    const key = voteKey(ballot.job, ballot.epoch)
    let heard = this.#heard.get(key)
    if (heard == null) remember(this.#heard, key, heard = new Map())
    heard.set(ballot.candidate, ballot)
  }

  /** Queues a claim for this node's vote at the next tick, unless a better-ranked one is queued. */
  queue (ballot: Ballot): void {
    const key = voteKey(ballot.job, ballot.epoch)
    const current = this.#queued.get(key)
    if (current == null || claimRank(ballot.job, ballot.candidate) < claimRank(ballot.job, current.candidate)) this.#queued.set(key, ballot)
  }

  /** Whether a ballot waits for the next tick. */
  get anyQueued (): boolean {
    return this.#queued.size > 0
  }

  /** The ballots queued since the last call. */
  takeQueued (): Ballot[] {
    const ballots = [...this.#queued.values()]
    this.#queued.clear()
    return ballots
  }

  /** Records this node's one vote of a job and epoch; false if it had voted already. */
  cast ({ job, epoch, candidate }: Ballot): boolean {
    const key = voteKey(job, epoch)
    if (this.#voted.has(key)) return false
    remember(this.#voted, key, candidate)
    return true
  }

  /** Adds a vote to the tally; returns the candidate's voters so far. */
  tally (job: JobId, epoch: number, candidate: string, voter: string): ReadonlySet<string> {
    const key = voteKey(job, epoch)
    let tally = this.#tallies.get(key)
    if (tally == null) remember(this.#tallies, key, tally = new Map())
    let voters = tally.get(candidate)
    if (voters == null) tally.set(candidate, voters = new Set())
    voters.add(voter)
    return voters
  }

  /** The members that voted for claims of that job and epoch ranked better than `candidate`'s. */
  votersForBetter (job: JobId, epoch: number, candidate: string): Set<string> {
    const mine = claimRank(job, candidate)
    const voters = new Set<string>()
    for (const [rival, theirs] of this.#tallies.get(voteKey(job, epoch)) ?? []) {
      if (rival !== candidate && claimRank(job, rival) < mine) for (const voter of theirs) voters.add(voter)
    }
    return voters
  }

  /**
   * A claim was withdrawn: the votes it got are void. If this node's vote went to it, the vote is
   * free again: returns the claims of that epoch still standing, to be considered anew.
   */
  withdraw (job: JobId, epoch: number, candidate: string): Ballot[] {
    const key = voteKey(job, epoch)
    this.#tallies.get(key)?.delete(candidate)
    const heard = this.#heard.get(key)
    heard?.delete(candidate)
    if (this.#voted.get(key) !== candidate) return []
    this.#voted.delete(key)
    return [...heard?.values() ?? []]
  }
}
