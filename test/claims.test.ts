import { afterEach, describe, expect, it, vi } from 'vitest'
import { FakeClock, systemClock } from '../src/clock.js'
import type { Clock } from '../src/clock.js'
import { BATCH_INTERVAL_MS, CLAIM_DEADLINE_MS, Claims, claimRank } from '../src/sched/claims.js'
import type { ClaimsInit, PeerLoad } from '../src/sched/claims.js'
import { decodeBatch } from '../src/sched/claim-batch.js'
import type { ClaimBatch } from '../src/sched/claim-batch.js'
import type { Attempt, JobId, PeerIdString } from '../src/types.js'

/**
 * An in-memory gossip bus whose deliveries the test releases by hand: "gossip delay" is whatever
 * the test says, so the claim protocol's safety can be checked against any delay.
 */
class Bus {
  private readonly handlers = new Map<string, (batch: ClaimBatch) => void>()
  private readonly queue: Array<{ from: string, batch: ClaimBatch, only?: Set<string> }> = []

  transport (peer: string): { publish: (b: ClaimBatch) => void, subscribe: (h: (b: ClaimBatch) => void) => void } {
    return {
      publish: batch => { this.queue.push({ from: peer, batch: JSON.parse(JSON.stringify(batch)) }) },
      subscribe: handler => { this.handlers.set(peer, handler) }
    }
  }

  /** Delivers the queued batches that `filter` lets through, to those peers; keeps the rest queued. */
  deliverSome (filter: (from: string, to: string) => boolean): void {
    const batches = this.queue.splice(0)
    for (const { from, batch } of batches) {
      const later = [...this.handlers].filter(([to]) => to !== from && !filter(from, to))
      for (const [to, handler] of this.handlers) if (to !== from && filter(from, to)) handler(batch)
      if (later.length > 0) this.queue.push({ from, batch, only: new Set(later.map(([to]) => to)) })
    }
  }

  /** Delivers queued batches; `to` limits delivery to some peers (the others lose them). */
  deliver (filter: (from: string, to: string) => boolean = () => true): number {
    const batches = this.queue.splice(0)
    for (const { from, batch, only } of batches) {
      for (const [to, handler] of this.handlers) if (to !== from && (only?.has(to) ?? true) && filter(from, to)) handler(batch)
    }
    return batches.length
  }

  async settle (claimants: Claims[], rounds = 20): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      this.deliver()
      for (const c of claimants) c.tick()
      await new Promise(resolve => setImmediate(resolve))
    }
  }
}

const job = 'abcdef-1' as JobId
const peersOf = (all: string[], self: string) => (): PeerLoad[] => all.filter(p => p !== self).map(peer => ({ peer, slots: 2, running: 0, draining: false, tags: [] }))

function mesh (names: string[], clock: Clock = new FakeClock(), extra: Partial<ClaimsInit> = {}): { bus: Bus, nodes: Claims[], preempted: string[], expired: JobId[][] } {
  const bus = new Bus()
  const preempted: string[] = []
  const expired: JobId[][] = []
  const nodes = names.map(self => new Claims({
    self,
    clock,
    transport: bus.transport(self),
    peers: peersOf(names, self),
    members: () => names.length,
    othersSilentFor: () => false,
    onExpired: jobs => { expired.push(jobs) },
    onPreempted: j => { preempted.push(`${self}:${j}`) },
    quietMs: 0,
    ...extra
  }))
  return { bus, nodes, preempted, expired }
}

/**
 * Claims of one job by random nodes of five, at random epochs among the first `epochs`, delivered
 * as `deliver` says over ten rounds: fails a trial with two winners; returns how many had one.
 */
async function randomSchedules ({ trials, seed, epochs, deliver }: {
  trials: number, seed: number, epochs: number, deliver: (bus: Bus, random: () => number) => void
}): Promise<number> {
  const random = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }
  let decided = 0
  for (let trial = 0; trial < trials; trial++) {
    const { bus, nodes } = mesh(['a', 'b', 'c', 'd', 'e'])
    const claimants = nodes.filter(() => random() < 0.6)
    const results = claimants.map(async n => await n.claim(job, 1 + Math.floor(random() * epochs), 30_000))
    for (let round = 0; round < 10; round++) {
      deliver(bus, random)
      for (const n of nodes) n.tick()
      await new Promise(resolve => setImmediate(resolve))
    }
    const winners = (await Promise.race([Promise.all(results), new Promise<boolean[]>(resolve => setTimeout(() => resolve([]), 10))])).filter(Boolean)
    expect(winners.length, `trial ${trial}`).toBeLessThanOrEqual(1)
    if (winners.length === 1) decided++
  }
  return decided
}

/** Only a and b talk: a claims the job at epoch 1, b hears it and votes for it; the claim cannot reach a quorum of five. */
const onlyAB = (from: string, to: string): boolean => ['a', 'b'].includes(from) && ['a', 'b'].includes(to)
async function claimHeardOnlyBy (bus: Bus, a: Claims, b: Claims): Promise<{ claim: Promise<boolean> }> {
  const claim = a.claim(job, 1, 30_000)
  for (let i = 0; i < 3; i++) {
    bus.deliver(onlyAB)
    for (const n of [a, b]) n.tick()
    await new Promise(resolve => setImmediate(resolve))
  }
  return { claim } // wrapped: awaiting the claim itself would wait for its deadline
}

const stops: Array<() => void> = []
afterEach(() => { for (const s of stops.splice(0)) s() })

describe('claims', () => {
  it('of one job and epoch by every node at once: one wins, even when all claims cross in flight', async () => {
    const { bus, nodes } = mesh(['a', 'b', 'c', 'd', 'e'])
    const results = nodes.map(async n => await n.claim(job, 1, 30_000))
    // every claim is published before any is delivered: the worst case for a timing-based window
    await bus.settle(nodes)
    expect((await Promise.all(results)).filter(Boolean)).toHaveLength(1)
  })

  it('never has two winners, whatever the delivery order and losses (200 random schedules)', async () => {
    const decided = await randomSchedules({ trials: 200, seed: 7, epochs: 1, deliver: (bus, random) => { bus.deliver(() => random() < 0.8) } })
    expect(decided).toBeGreaterThan(100)
  })

  it('never has two winners when claims of several epochs cross, whatever the delivery order and losses (500 random schedules)', async () => {
    // on a loaded mesh nodes claim one job at different epochs (one heard of an earlier failed
    // claim, another not yet): a voter that backed a later epoch must not back an earlier one,
    // or both win and the earlier holder's copy runs beside the later one (seen as 301 runs of
    // 300 jobs in the five-node race under load). Undelivered batches arrive later, in another order.
    const decided = await randomSchedules({ trials: 500, seed: 11, epochs: 3, deliver: (bus, random) => { bus.deliverSome(() => random() < 0.5) } })
    expect(decided).toBeGreaterThan(200)
  })

  it('a claimant that hears a claim of a later epoch gives its own up, so that its vote never counts for both', async () => {
    const clock = new FakeClock()
    const { bus, nodes: [a, b, c, d, e] } = mesh(['a', 'b', 'c', 'd', 'e'], clock)
    const first = a.claim(job, 1, 30_000)
    const second = c.claim(job, 2, 30_000)
    for (const n of [a, c]) n.tick() // each votes for its own claim
    // a's claim reaches b and d, c's reaches a and e: a is the only node that hears both
    bus.deliver((from, to) => (from === 'a' && ['b', 'd'].includes(to)) || (from === 'c' && ['a', 'e'].includes(to)))
    for (const n of [a, b, c, d, e]) n.tick()
    await bus.settle([a, b, c, d, e])
    clock.advance(CLAIM_DEADLINE_MS)
    const won = await Promise.all([first, second])
    // a voted for its own claim, then for c's; b and d voted for a's. a gave its claim up when it heard c's
    expect(won).toEqual([false, true])
  })

  it('a job whose claims all failed is claimed again at a higher epoch', async () => {
    const clock = new FakeClock()
    const { bus, nodes: [a, b, c] } = mesh(['a', 'b', 'c'], clock)
    // each claim reaches nobody: every claimant votes for itself alone and none gets a majority
    const claims = [a, b, c].map(async n => await n.claim(job, 1, 30_000))
    for (const n of [a, b, c]) n.tick()
    bus.deliver(() => false)
    clock.advance(CLAIM_DEADLINE_MS)
    expect(await Promise.all(claims)).toEqual([false, false, false])
    expect(a.nextEpoch(job, 0)).toBe(2)
    const retry = a.claim(job, a.nextEpoch(job, 0), 30_000)
    await bus.settle([a, b, c])
    expect(await retry).toBe(true)
  })

  it('nodes do not vote to take over a job whose holder they still hear from', async () => {
    const clock = new FakeClock()
    const { bus, nodes: [a, b, c] } = mesh(['a', 'b', 'c'], clock)
    const won = a.claim(job, 1, 30_000)
    await bus.settle([a, b, c])
    expect(await won).toBe(true)
    // c missed everything and claims the next epoch: a holds the job, b still sees a's lease
    const takeover = c.claim(job, 2, 30_000)
    await bus.settle([a, b, c])
    clock.advance(CLAIM_DEADLINE_MS)
    expect(await takeover).toBe(false)
  })

  it('a group at its limit gets no votes until a job of it ends', async () => {
    const [first, second] = ['render-1', 'render-2'] as JobId[]
    const clock = new FakeClock()
    const { bus, nodes: [a, b, c] } = mesh(['a', 'b', 'c'], clock, { capsOf: () => [{ key: 'group render', limit: 1 }] })
    const won = a.claim(first, 1, 30_000)
    await bus.settle([a, b, c])
    expect(await won).toBe(true)
    expect(c.atLimit(second)).toBe(true)
    expect(c.atLimit(first)).toBe(false) // a job does not count against itself
    // c claims anyway (as if it had not heard of a's lease): a and b abstain, so it gets no majority
    const over = c.claim(second, 1, 30_000)
    await bus.settle([a, b, c])
    clock.advance(CLAIM_DEADLINE_MS)
    expect(await over).toBe(false)
    a.release(first)
    await bus.settle([a, b, c])
    const next = c.claim(second, c.nextEpoch(second, 0), 30_000)
    await bus.settle([a, b, c])
    expect(await next).toBe(true)
  })

  it('of two jobs of a group limited to one, crossing in flight: exactly one wins', async () => {
    for (const names of [['a', 'b'], ['a', 'b', 'c'], ['a', 'b', 'c', 'd', 'e']]) {
      const { bus, nodes } = mesh(names, new FakeClock(), { capsOf: () => [{ key: 'group render', limit: 1 }] })
      const results = [nodes[0].claim('render-1' as JobId, 1, 30_000), nodes[1].claim('render-2' as JobId, 1, 30_000)]
      await bus.settle(nodes)
      expect((await Promise.all(results)).filter(Boolean), `${names.length} nodes`).toHaveLength(1)
    }
  })

  it('a node that votes for an earlier job of a full group withdraws its own claim of a later one', async () => {
    const { bus, nodes: [a, b, c] } = mesh(['a', 'b', 'c'], new FakeClock(), { capsOf: () => [{ key: 'group render', limit: 1 }] })
    const first = a.claim('render-1' as JobId, 1, 30_000)
    const second = b.claim('render-2' as JobId, 1, 30_000)
    // c hears only b's claim and backs it; b hears a's claim of the earlier job and backs that
    bus.deliver((from, to) => !(from === 'a' && to === 'c') && !(from === 'b' && to === 'a'))
    for (const n of [a, b, c]) n.tick()
    await bus.settle([a, b, c])
    expect([await first, await second]).toEqual([true, false])
  })

  it('a node that just started neither votes nor claims until its quiet period is over', async () => {
    const clock = new FakeClock()
    const bus = new Bus()
    const names = ['a', 'b', 'c']
    // b and c have just restarted: they may have voted in epoch 1 before, and cannot remember it
    const [a, b, c] = names.map(self => new Claims({
      self, clock, transport: bus.transport(self), peers: peersOf(names, self), members: () => 3, othersSilentFor: () => false,
      onExpired: () => {}, onPreempted: () => {}, quietMs: self === 'a' ? 0 : 3000
    }))
    const early = a.claim(job, 1, 30_000)
    await bus.settle([a, b, c])
    clock.advance(CLAIM_DEADLINE_MS)
    expect(await early).toBe(false) // nobody else voted
    const later = a.claim(job, a.nextEpoch(job, 0), 30_000)
    await bus.settle([a, b, c])
    expect(await later).toBe(true)
  })

  it('a lone node wins at once', async () => {
    const { nodes } = mesh(['solo'])
    expect(await nodes[0].claim(job, 1, 30_000)).toBe(true)
  })

  it('a node that already voted for a rival does not claim that epoch', async () => {
    const { bus, nodes: [a, b, c] } = mesh(['a', 'b', 'c'])
    const first = a.claim(job, 1, 30_000)
    await bus.settle([a, b, c])
    expect(await first).toBe(true)
    expect(await b.claim(job, 1, 30_000)).toBe(false)
    expect(b.bars(job, 0)).toBe(true)
  })

  it('a lease lapses after its TTR without renewals, measured on the observer\'s clock', async () => {
    const clock = new FakeClock()
    const { bus, nodes: [a, b], expired } = mesh(['a', 'b'], clock)
    const won = a.claim(job, 1, 3000)
    await bus.settle([a, b])
    expect(await won).toBe(true)
    const attempt: Attempt = { job, epoch: 1, node: 'a' as PeerIdString, basis: 0, claimedAt: 0, startedAt: 0 }
    expect(b.alive(attempt, 3000)).toBe(true)
    // renewals keep it alive
    for (let t = 0; t < 6; t++) {
      clock.advance(1000)
      await bus.settle([a, b], 1)
    }
    expect(b.alive(attempt, 3000)).toBe(true)
    // a stops renewing (it died): b sees the lease lapse after TTR, and it stays lapsed
    clock.advance(3001)
    b.tick()
    expect(expired.flat()).toContain(job)
    expect(b.alive(attempt, 3000)).toBe(false)
    expect(b.bars(job, 1)).toBe(false)
  })

  it('a holder knows how long its lease is confirmed: never past the moment another node may see it lapse', async () => {
    const clock = new FakeClock()
    const { bus, nodes: [a, b, c] } = mesh(['a', 'b', 'c'], clock)
    const ttr = 3000
    const won = a.claim(job, 1, ttr)
    await bus.settle([a, b, c])
    expect(await won).toBe(true)
    const step = async (deliver: (from: string, to: string) => boolean): Promise<void> => {
      clock.advance(100)
      bus.deliver(deliver)
      for (const n of [a, b, c]) n.tick()
      await new Promise(resolve => setImmediate(resolve))
    }
    // acknowledged renewals keep the lease confirmed well ahead
    for (let t = 0; t < 60; t++) await step(() => true)
    expect(a.confirmedFor(job)).toBeGreaterThan(ttr / 2)
    // a's renewals stop arriving while the others' batches still reach it (a one-way link)
    let lapsedAt: number | undefined
    for (let t = 0; t < 60 && lapsedAt === undefined; t++) {
      await step(from => from !== 'a')
      if (b.leaseOf(job) === undefined) lapsedAt = clock.monotonic()
      // the moment b may back a takeover, a's lease is no longer confirmed: a has fenced by then
      if (lapsedAt !== undefined) expect(a.confirmedFor(job)).toBeLessThanOrEqual(0)
    }
    expect(lapsedAt).toBeDefined()
  })

  it('a lease needs the acknowledgements of a quorum of the members as they are now, when more have joined since the claim', async () => {
    const clock = new FakeClock()
    const { bus, nodes: [b, c] } = mesh(['b', 'c'], clock)
    let live = ['b', 'c']
    const a = new Claims({
      self: 'a', clock, transport: bus.transport('a'), quietMs: 0, onExpired: () => {}, onPreempted: () => {},
      peers: () => live.map(peer => ({ peer, slots: 2, running: 0, draining: false, tags: [] })),
      members: () => live.length + 1,
      othersSilentFor: () => false
    })
    const ttr = 3000
    const won = a.claim(job, 1, ttr)
    await bus.settle([a, b, c])
    expect(await won).toBe(true)
    const run = async (ms: number): Promise<void> => {
      for (let t = 0; t < ms; t += 100) {
        clock.advance(100)
        await bus.settle([a, b, c], 1)
      }
    }
    await run(3000)
    expect(a.confirmedFor(job)).toBeGreaterThan(ttr / 2)
    // four more nodes count as live but say nothing: b and c are no longer a majority of seven
    live = ['b', 'c', 'd', 'e', 'f', 'g']
    await run(2 * ttr)
    expect(a.confirmedFor(job)).toBeLessThanOrEqual(0)
  })

  it('a won lease is confirmed for its TTR from the claim, so a holder whose first renewals go unacknowledged for seconds is not fenced', async () => {
    const clock = new FakeClock()
    const { bus, nodes: [a, b, c] } = mesh(['a', 'b', 'c'], clock)
    const won = a.claim(job, 1, 30_000)
    await bus.settle([a, b, c])
    expect(await won).toBe(true)
    // a busy machine: nothing arrives for 8 s (the old rule fenced after about half a second)
    for (let t = 0; t < 80; t++) {
      clock.advance(100)
      a.tick()
      bus.deliver(() => false)
    }
    expect(a.confirmedFor(job)).toBeGreaterThan(20_000)
    // and the voters still bar the job for the same time: no takeover before the holder fences
    expect(b.bars(job, 0)).toBe(true)
    expect(c.bars(job, 0)).toBe(true)
  })

  it('a quorum is a majority of the members, not of the nodes heard lately: two of five cannot win', async () => {
    const clock = new FakeClock()
    const { bus, nodes: [a, b, c, d, e] } = mesh(['a', 'b', 'c', 'd', 'e'], clock)
    // a and b hear each other only; c, d and e are members a cannot reach
    const claim = a.claim(job, 1, 30_000)
    for (let i = 0; i < 10; i++) {
      bus.deliver((from, to) => ['a', 'b'].includes(from) && ['a', 'b'].includes(to))
      for (const n of [a, b, c, d, e]) n.tick()
      await new Promise(resolve => setImmediate(resolve))
    }
    clock.advance(CLAIM_DEADLINE_MS)
    expect(await claim).toBe(false)
  })

  it('a lost claim is withdrawn: its voters no longer bar the job', async () => {
    const clock = new FakeClock()
    const { bus, nodes: [a, b, c, d, e] } = mesh(['a', 'b', 'c', 'd', 'e'], clock)
    const { claim } = await claimHeardOnlyBy(bus, a, b)
    expect(b.bars(job, 0)).toBe(true) // b voted for a's claim
    clock.advance(CLAIM_DEADLINE_MS)
    expect(await claim).toBe(false) // the deadline passed without a quorum
    a.tick()
    bus.deliver(onlyAB)
    expect(b.bars(job, 0)).toBe(false)
    const retry = b.claim(job, b.nextEpoch(job, 0), 30_000)
    await bus.settle([a, b, c, d, e])
    expect(await retry).toBe(true)
  })

  it('a withdrawal that gossip lost is sent again, so the lost claim\'s voter does not bar the job for a TTR', async () => {
    const clock = new FakeClock()
    const { bus, nodes: [a, b] } = mesh(['a', 'b', 'c', 'd', 'e'], clock)
    const { claim } = await claimHeardOnlyBy(bus, a, b)
    clock.advance(CLAIM_DEADLINE_MS)
    expect(await claim).toBe(false)
    a.tick()
    bus.deliver(() => false) // the withdrawal is lost
    expect(b.bars(job, 0)).toBe(true)
    clock.advance(1000)
    a.tick()
    bus.deliver(onlyAB)
    expect(b.bars(job, 0)).toBe(false)
  })

  it('a vote given to a claim that is withdrawn moves to the best claim still standing, so a split vote still elects one', async () => {
    const clock = new FakeClock()
    const names = ['a', 'b', 'c', 'd']
    const { bus, nodes } = mesh(names, clock)
    const byName = new Map(names.map((n, i) => [n, nodes[i]]))
    // the two best-ranked nodes claim the job at once; each of the two others hears one of them first
    const [best, second, third, fourth] = [...names].sort((x, y) => claimRank(job, x) < claimRank(job, y) ? -1 : 1)
    const claims = [(byName.get(best) as Claims).claim(job, 1, 30_000), (byName.get(second) as Claims).claim(job, 1, 30_000)]
    bus.deliverSome((from, to) => (from === best && to === third) || (from === second && to === fourth))
    for (const n of [byName.get(third), byName.get(fourth)] as Claims[]) n.tick() // a 2-2 split: quorum is 3
    await bus.settle(nodes)
    expect(await Promise.all(claims)).toEqual([true, false])
    expect(clock.monotonic()).toBe(0) // decided without waiting out any deadline
  })

  it('a claim that too many members refuse is given up at once, and the node backs off before claiming again', async () => {
    const clock = new FakeClock()
    const { bus, nodes: [a, b, c] } = mesh(['a', 'b', 'c'], clock)
    const won = a.claim(job, 1, 30_000)
    for (let i = 0; i < 20; i++) {
      bus.deliver((_, to) => to !== 'c') // c misses a's claim and lease
      for (const n of [a, b, c]) n.tick()
      await new Promise(resolve => setImmediate(resolve))
    }
    expect(await won).toBe(true)
    // b knows a holds the job and refuses c's claim, so c cannot reach 2 of 3
    const takeover = c.claim(job, 2, 30_000)
    await bus.settle([a, b, c])
    expect(await takeover).toBe(false)
    expect(clock.monotonic()).toBe(0)
    expect(c.retryAt(job)).toBeGreaterThan(clock.monotonic())
  })

  it('a withdrawn claim of a dead holder\'s job leaves the old lease lapsed, so the job stays free', async () => {
    const clock = new FakeClock()
    const { bus, nodes: [a, b, c, d, e] } = mesh(['a', 'b', 'c', 'd', 'e'], clock)
    const won = a.claim(job, 1, 3000)
    await bus.settle([a, b, c, d, e])
    expect(await won).toBe(true)
    const attempt: Attempt = { job, epoch: 1, node: 'a' as PeerIdString, basis: 0, claimedAt: 0, startedAt: 0 }
    clock.advance(3001) // a is dead: its lease lapses everywhere
    for (const n of [b, c, d, e]) n.tick()
    expect(b.alive(attempt, 3000)).toBe(false)
    // b claims, reaches only c, and withdraws; c must not give the dead attempt a fresh TTR
    const lost = b.claim(job, 2, 3000)
    bus.deliver((from, to) => ['b', 'c'].includes(from) && ['b', 'c'].includes(to))
    for (const n of [b, c]) n.tick()
    bus.deliver((from, to) => ['b', 'c'].includes(from) && ['b', 'c'].includes(to))
    clock.advance(CLAIM_DEADLINE_MS)
    expect(await lost).toBe(false)
    b.tick()
    bus.deliver((from, to) => ['b', 'c'].includes(from) && ['b', 'c'].includes(to))
    expect(c.alive(attempt, 3000)).toBe(false)
    expect(c.bars(job, 1)).toBe(false)
  })

  it('two members: a holder is never fenced for want of acknowledgements (no quorum can form without it)', async () => {
    const clock = new FakeClock()
    const { bus, nodes: [a, b] } = mesh(['a', 'b'], clock)
    const won = a.claim(job, 1, 3000)
    await bus.settle([a, b])
    expect(await won).toBe(true)
    clock.advance(60_000) // b is gone
    a.tick()
    expect(a.confirmedFor(job)).toBe(Infinity)
  })

  it('two members: once the other has been silent for the alone window, the survivor wins alone; not before', async () => {
    let silent = false
    const { bus, nodes: [a] } = mesh(['a', 'b'], new FakeClock(), { othersSilentFor: windowMs => silent && windowMs <= 1500 })
    expect(a.alone(3000)).toBe(false)
    silent = true
    expect(a.alone(3000)).toBe(true)
    expect(a.alone(30_000)).toBe(false) // a longer TTR waits longer (5 s) before acting alone
    expect(await a.claim(job, 1, 3000)).toBe(true)
    expect(a.heldAlone(job)).toBe(true)
    a.tick()
    expect(bus.deliver()).toBeGreaterThan(0) // the renewal still goes out, for when b is back
  })

  it('three or more members never act alone', () => {
    const { nodes: [a] } = mesh(['a', 'b', 'c'], new FakeClock(), { othersSilentFor: () => true })
    expect(a.alone(3000)).toBe(false)
  })

  it('a lease given up before its attempt was recorded is not announced: it lapses after its TTR instead of barring the job', async () => {
    const clock = new FakeClock()
    const { bus, nodes: [a, b] } = mesh(['a', 'b'], clock)
    const won = a.claim(job, 1, 3000)
    await bus.settle([a, b])
    expect(await won).toBe(true)
    a.release(job, { recorded: false }) // the start could not be written (a full disk)
    await bus.settle([a, b])
    expect(b.bars(job, 0)).toBe(true)
    clock.advance(3001)
    b.tick()
    // a release would have barred the job until an attempt that never comes was recorded
    expect(b.bars(job, 0)).toBe(false)
  })

  it('a released lease bars claims until the attempt is recorded locally', async () => {
    const { bus, nodes: [a, b] } = mesh(['a', 'b'])
    const won = a.claim(job, 1, 30_000)
    await bus.settle([a, b])
    expect(await won).toBe(true)
    a.release(job)
    await bus.settle([a, b], 2)
    expect(b.bars(job, 0)).toBe(true) // the ledger here does not know epoch 1 yet
    expect(b.bars(job, 1)).toBe(false)
    expect(a.bars(job, 1)).toBe(false) // nor does the former holder bar it (e.g. for a retry)
  })

  it('a released lease bars claims and votes until the end of its attempt is recorded here, not just its start, also after later claims were heard and withdrawn', async () => {
    const clock = new FakeClock()
    const bus = new Bus()
    const names = ['a', 'b', 'c']
    // a ran the job and recorded its end; b and c have only its start so far (their ledger lags)
    const endKnown = new Set(['a'])
    let recorded = 0 // the epoch of the attempt every ledger has the start of
    const [a, b, c] = names.map(self => new Claims({
      self, clock, transport: bus.transport(self), peers: peersOf(names, self), members: () => 3, othersSilentFor: () => false,
      onExpired: () => {}, onPreempted: () => {}, quietMs: 0,
      knownEpoch: () => recorded,
      ended: () => endKnown.has(self),
      claimable: () => !endKnown.has(self)
    }))
    const won = a.claim(job, 1, 30_000)
    await bus.settle([a, b, c])
    expect(await won).toBe(true)
    recorded = 1
    a.release(job)
    await bus.settle([a, b, c], 2)
    expect(b.bars(job, 1)).toBe(true)
    const again = c.claim(job, 2, 30_000)
    await bus.settle([a, b, c])
    clock.advance(CLAIM_DEADLINE_MS)
    expect(await again).toBe(false) // a knows it is done and b that it may be: neither votes for it
    // the lost claim, heard and withdrawn, did not take the released lease's place at b: a later
    // claim is refused too (on a loaded mesh whose ledger sync lagged 9 s, it was won, and the job ran twice)
    expect(b.bars(job, 1)).toBe(true)
    const later = c.claim(job, c.nextEpoch(job, 1), 30_000)
    await bus.settle([a, b, c])
    clock.advance(CLAIM_DEADLINE_MS)
    expect(await later).toBe(false)
    endKnown.add('b')
    expect(b.bars(job, 1)).toBe(false)
  })

  it('gives up a claim at once when the ledger has an attempt of its epoch: its winner may die before the claim is voted down', async () => {
    const clock = new FakeClock()
    const bus = new Bus()
    let recorded = 0
    // a mesh of two: b won epoch 1 alone (a was silent to it), a claimed epoch 1 too
    const [a, b] = ['a', 'b'].map(self => new Claims({
      self, clock, transport: bus.transport(self), peers: peersOf(['a', 'b'], self), members: () => 2, othersSilentFor: () => self === 'b',
      onExpired: () => {}, onPreempted: () => {}, quietMs: 0, knownEpoch: () => self === 'a' ? recorded : 0
    }))
    expect(await b.claim(job, 1, 30_000)).toBe(true)
    const first = a.claim(job, 1, 30_000)
    let settledAt: number | undefined
    void first.then(() => { settledAt = clock.monotonic() })
    bus.deliver(from => from === 'a') // b's renewal is lost: b died right after its win
    a.tick()
    await new Promise(resolve => setImmediate(resolve))
    expect(settledAt).toBeUndefined()
    recorded = 1 // b's attempt reaches a's ledger
    a.tick()
    expect(await first).toBe(false)
    expect(settledAt).toBe(0) // not after the claim deadline
  })

  it('a holder cut off past its TTR is taken over at the next epoch, and stops its copy when it hears so', async () => {
    const clock = new FakeClock()
    const { bus, nodes: [a, b, c], preempted } = mesh(['a', 'b', 'c'], clock)
    const won = a.claim(job, 1, 3000)
    await bus.settle([a, b, c])
    expect(await won).toBe(true)
    // a is cut off: nothing it sends arrives, and its lease lapses for b and c
    clock.advance(3001)
    b.tick()
    c.tick()
    const later = b.claim(job, 2, 3000)
    for (let i = 0; i < 5; i++) {
      bus.deliver(from => from !== 'a')
      b.tick()
      c.tick()
      await new Promise(resolve => setImmediate(resolve))
    }
    expect(await later).toBe(true)
    b.tick()
    bus.deliver(from => from !== 'a') // b's renewal reaches a
    expect(preempted).toEqual([`a:${job}`])
  })

  it('drops malformed batches, and those of protocol 1', () => {
    expect(decodeBatch(new TextEncoder().encode('{"v":2}'))).toBeUndefined()
    expect(decodeBatch(new Uint8Array(300 * 1024))).toBeUndefined()
    const valid = { v: 2, peer: 'x', boot: 'b', seq: 1, claims: [[job, 1, 3000]], renews: [], releases: [], withdraws: [], refusals: [], votes: [[job, 1, 'x']], acks: [] }
    expect(decodeBatch(new TextEncoder().encode(JSON.stringify(valid)))).toEqual(valid)
    expect(decodeBatch(new TextEncoder().encode(JSON.stringify({ ...valid, claims: [[job, -1, 3000]] })))).toBeUndefined()
    expect(decodeBatch(new TextEncoder().encode(JSON.stringify({ ...valid, v: 1, claims: [[job, 1]] })))).toBeUndefined()
  })
})

describe('the claims tick', () => {
  afterEach(() => { vi.useRealTimers() })

  it('runs only while there is work: idle nodes set no timer; a claim wakes the nodes that hear it; all stop once the lease is released and resent', async () => {
    // the real Claims timers, on time the test moves
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'] })
    const { bus, nodes } = mesh(['a', 'b', 'c'], systemClock)
    const [a] = nodes
    for (const n of nodes) n.start()
    stops.push(() => { for (const n of nodes) n.stop() })
    expect(vi.getTimerCount()).toBe(0)
    const step = async (): Promise<void> => {
      bus.deliver()
      await vi.advanceTimersByTimeAsync(BATCH_INTERVAL_MS)
    }
    const won = a.claim(job, 1, 30_000)
    for (let i = 0; i < 10; i++) await step()
    expect(await won).toBe(true)
    // the holder renews its lease, the others time it: all three tick
    expect(vi.getTimerCount()).toBe(3)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(vi.getTimerCount()).toBe(3)
    a.release(job)
    // the release goes out at once and again 250 ms and 1 s later
    for (let t = 0; t <= 1000 + 2 * BATCH_INTERVAL_MS; t += BATCH_INTERVAL_MS) await step()
    expect(vi.getTimerCount()).toBe(0)
  })
})
