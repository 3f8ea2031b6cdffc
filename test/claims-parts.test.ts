/**
 * The collaborators of `Claims`, each on its own: the lease book, the ballot box, the held
 * leases (renewals and confirmation), group limits, backoff and the publisher. test/claims.test.ts
 * checks the protocol they make together.
 */
import { describe, expect, it } from 'vitest'
import { FakeClock } from '../src/clock.js'
import { ClaimBackoff } from '../src/sched/claims/backoff.js'
import { BallotBox } from '../src/sched/claims/ballot-box.js'
import { GroupLimits } from '../src/sched/claims/group-limits.js'
import { HeldLeases } from '../src/sched/claims/held-leases.js'
import { LeaseBook } from '../src/sched/claims/lease-book.js'
import { ClaimPublisher, ReplayFilter } from '../src/sched/claims/publisher.js'
import { claimRank } from '../src/sched/claims/rank.js'
import { MAX_BATCH_ENTRIES } from '../src/sched/claim-batch.js'
import type { ClaimBatch } from '../src/sched/claim-batch.js'
import type { Attempt, JobId } from '../src/types.js'

const job = 'abcdef-1' as JobId
const other = 'abcdef-2' as JobId

describe('LeaseBook', () => {
  it('a lease lapses once, TTR after it was heard, and is reported once', () => {
    const clock = new FakeClock()
    const book = new LeaseBook({ clock })
    expect(book.observe(job, { peer: 'b', epoch: 1, expiresAt: 1000 }, true, false)).toBe(true)
    clock.advance(999)
    expect(book.lapse()).toEqual([])
    expect(book.live(job)?.peer).toBe('b')
    clock.advance(2)
    expect(book.lapse()).toEqual([job])
    expect(book.lapse()).toEqual([])
    expect(book.live(job)).toBeUndefined()
    expect(book.get(job)?.expired).toBe(true) // kept: the attempt stays lost
  })

  it('a claim does not displace a live lease of another node; a renewal of a higher epoch does', () => {
    const clock = new FakeClock()
    const book = new LeaseBook({ clock })
    book.observe(job, { peer: 'b', epoch: 1, expiresAt: 1000 }, true, false)
    expect(book.observe(job, { peer: 'c', epoch: 2, expiresAt: 4000 }, false, false)).toBe(false)
    expect(book.observe(job, { peer: 'c', epoch: 2, expiresAt: 4000 }, true, false)).toBe(true)
    expect(book.live(job)).toMatchObject({ peer: 'c', epoch: 2 })
  })

  it('a released lease bars the job until the end of its attempt is recorded here', () => {
    const clock = new FakeClock()
    let ended = false
    const book = new LeaseBook({ clock, knownEpoch: () => 1, ended: () => ended })
    book.observe(job, { peer: 'b', epoch: 1, expiresAt: 1000 }, true, false)
    book.released(job, 'b', 1)
    clock.advance(5000)
    expect(book.lapse()).toEqual([]) // released leases do not lapse
    expect(book.bars(job, 1)).toBe(true)
    ended = true
    expect(book.bars(job, 1)).toBe(false)
  })

  it('a withdrawn claim lifts its bar but leaves the record, lapsed', () => {
    const clock = new FakeClock()
    const book = new LeaseBook({ clock })
    book.observe(job, { peer: 'b', epoch: 2, expiresAt: 4000 }, false, false)
    book.withdrawn(job, 'b', 2)
    expect(book.live(job)).toBeUndefined()
    // an older attempt heard later does not get a fresh TTR
    const older: Attempt = { job, epoch: 1, node: 'a' as Attempt['node'], basis: 0, claimedAt: 0 }
    expect(book.alive(older, 30_000)).toBe(false)
  })
})

describe('BallotBox', () => {
  it('votes once per job and epoch, for the best-ranked claim queued by the tick', () => {
    const box = new BallotBox()
    const [best, worse] = ['b', 'c'].sort((x, y) => claimRank(job, x) < claimRank(job, y) ? -1 : 1)
    box.queue({ job, epoch: 1, candidate: worse, ttrMs: 1000 })
    box.queue({ job, epoch: 1, candidate: best, ttrMs: 1000 })
    expect(box.backs(job, 1)).toBe(true)
    const [ballot] = box.takeQueued()
    expect(ballot.candidate).toBe(best)
    expect(box.cast(ballot)).toBe(true)
    expect(box.cast({ job, epoch: 1, candidate: worse, ttrMs: 1000 })).toBe(false)
    expect(box.backs(job, 2)).toBe(false)
  })

  it('a vote for a withdrawn claim comes free, with the claims still standing', () => {
    const box = new BallotBox()
    const b = { job, epoch: 1, candidate: 'b', ttrMs: 1000 }
    const c = { job, epoch: 1, candidate: 'c', ttrMs: 1000 }
    box.hear(b)
    box.hear(c)
    box.hear({ job, epoch: 1, candidate: 'd', ttrMs: 1000 })
    box.cast(b)
    expect(box.withdraw(job, 1, 'd')).toEqual([]) // not the one voted for
    expect(box.withdraw(job, 1, 'b')).toEqual([c])
    expect(box.voted(job, 1)).toBe(false)
  })

  it('counts voters per candidate, and those of better-ranked rivals', () => {
    const box = new BallotBox()
    const [best, worse] = ['b', 'c'].sort((x, y) => claimRank(job, x) < claimRank(job, y) ? -1 : 1)
    box.tally(job, 1, best, 'x')
    box.tally(job, 1, best, 'y')
    expect(box.tally(job, 1, worse, 'z').size).toBe(1)
    expect([...box.votersForBetter(job, 1, worse)].sort()).toEqual(['x', 'y'])
    expect(box.votersForBetter(job, 1, best).size).toBe(0)
  })
})

describe('HeldLeases', () => {
  it('renews every held lease once any is due, every quarter TTR', () => {
    const clock = new FakeClock()
    const held = new HeldLeases(clock)
    held.hold(job, 1, 4000, 4000)
    held.hold(other, 3, 8000, 8000)
    expect(held.due(true)).toEqual([[job, 1, 4000], [other, 3, 8000]])
    clock.advance(999)
    expect(held.due()).toEqual([])
    clock.advance(1)
    expect(held.due().map(([j]) => j)).toEqual([job, other])
  })

  it('a lease is confirmed TTR past the latest renewal that enough peers acknowledged', () => {
    const clock = new FakeClock()
    const held = new HeldLeases(clock)
    held.hold(job, 1, 4000, 4000)
    clock.advance(3000)
    held.sent(7, held.due(true))
    clock.advance(500)
    expect(held.confirmedFor(job)).toBe(500)
    held.acknowledged('b', 7, 2)
    expect(held.confirmedFor(job)).toBe(500) // one of two needed
    held.acknowledged('c', 7, 2)
    expect(held.confirmedFor(job)).toBe(3000 + 4000 - 3500)
  })

  it('a lease won alone is never fenced; a dropped one is not held', () => {
    const held = new HeldLeases(new FakeClock())
    held.hold(job, 1, 4000)
    expect(held.alone(job)).toBe(true)
    expect(held.confirmedFor(job)).toBe(Infinity)
    expect(held.drop(job)).toBe(1)
    expect(held.confirmedFor(job)).toBeUndefined()
    expect(held.drop(job)).toBeUndefined()
  })
})

describe('GroupLimits', () => {
  it('counts live leases and own pending claims of the group, never the job itself', () => {
    const clock = new FakeClock()
    const leases = new LeaseBook({ clock })
    const pending = new Set<JobId>()
    const limits = new GroupLimits({ leases, pending: () => pending, capsOf: () => [{ key: 'group g', limit: 1 }] })
    expect(limits.atLimit(job)).toBe(false)
    leases.observe(other, { peer: 'b', epoch: 1, expiresAt: 1000 }, true, false)
    expect(limits.atLimit(job)).toBe(true)
    expect(limits.atLimit(other)).toBe(false)
    clock.advance(1001)
    expect(limits.atLimit(job)).toBe(false)
    const later = 'abcdef-3' as JobId
    pending.add(later)
    expect(limits.atLimit(job)).toBe(true)
    // for a vote, only own pending claims of jobs that sort first count
    expect(limits.atLimit(job, true)).toBe(false)
    expect(limits.overtaken(job)).toEqual([later])
  })
})

describe('ClaimBackoff', () => {
  it('doubles with each loss in a row up to 10 s, times 0.5 to 1.5, and clears on a win', () => {
    const clock = new FakeClock()
    const backoff = new ClaimBackoff(clock, () => 0.5) // factor 1
    const delays = []
    for (let i = 0; i < 6; i++) {
      backoff.lost(job)
      delays.push(backoff.retryAt(job))
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000])
    backoff.won(job)
    expect(backoff.retryAt(job)).toBe(0)
  })
})

describe('ClaimPublisher and ReplayFilter', () => {
  it('splits a big outbox into batches receivers accept, numbered in order, and counts them', () => {
    const sent: ClaimBatch[] = []
    const publisher = new ClaimPublisher('a', { publish: batch => { sent.push(batch) }, subscribe: () => {} })
    for (let i = 0; i < MAX_BATCH_ENTRIES + 1; i++) publisher.outbox.votes.push([`abcdef-${i + 1}` as JobId, 1, 'b'])
    publisher.flush()
    publisher.flush() // nothing queued: nothing sent
    expect(sent.map(b => [b.seq, b.votes.length])).toEqual([[1, MAX_BATCH_ENTRIES], [2, 1]])
    expect(publisher.stats()).toMatchObject({ batches: 2, votes: MAX_BATCH_ENTRIES + 1 })
    const filter = new ReplayFilter()
    expect(sent.map(b => filter.replayed(b))).toEqual([false, false])
    expect(filter.replayed(sent[0])).toBe(true)
    expect(filter.replayed({ ...sent[0], boot: 'restarted' })).toBe(false)
  })
})
