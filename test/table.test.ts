/** The job table (JobTable): states derived from facts, dependants, groups, pauses, the run queue, `mod`, and replicas agreeing. */
import { describe, expect, it } from 'vitest'
import { FakeClock } from '../src/clock.js'
import { MetaMap, groupFactKey } from '../src/crdt/facts.js'
import type { FactChange } from '../src/crdt/facts.js'
import type { JobTable } from '../src/sched/table.js'
import type { Control, JobId, JobSpec, PeerIdString } from '../src/types.js'
import { A, B, attemptFact, controlFact, jobFact, spec, table } from './table-fixtures.js'

describe('derived job state', () => {
  it('follows attempts, retries and controls', () => {
    const clock = new FakeClock()
    const t = table(clock)
    const job = spec(1, { retries: 1 })
    t.ingest([jobFact(job)])
    expect(t.get(job.id)?.derived.state).toBe('ready')
    t.ingest([attemptFact({ job: job.id, epoch: 1, node: A, basis: 0, claimedAt: 1, startedAt: 1 })])
    expect(t.get(job.id)?.derived.state).toBe('running')
    t.ingest([attemptFact({ job: job.id, epoch: 1, node: A, basis: 0, claimedAt: 1, startedAt: 1,
      endedAt: clock.now(), exitCode: 3, failReason: 'non-zero-exit' })])
    expect(t.get(job.id)?.derived).toMatchObject({ state: 'pending', reason: expect.stringMatching(/retry 1\/1 after backoff/) })
    clock.advance(1000)
    t.wakeDue()
    expect(t.get(job.id)?.derived.state).toBe('ready')
    t.ingest([attemptFact({ job: job.id, epoch: 2, node: B, basis: 0, claimedAt: 1, startedAt: 1,
      endedAt: 2, exitCode: 4, failReason: 'non-zero-exit' })])
    expect(t.get(job.id)?.derived).toMatchObject({ state: 'failed', reason: 'exit code 4' })
    t.ingest([controlFact(job.id, { kind: 'retry', lamport: 1, by: A, at: 3 })])
    expect(t.get(job.id)?.derived.state).toBe('ready')
    t.ingest([controlFact(job.id, { kind: 'kill', lamport: 2, by: B, at: 4 })])
    expect(t.get(job.id)?.derived.state).toBe('killed')
  })

  it('a lost attempt does not count as a failure', () => {
    const t = table()
    const job = spec(1)
    t.ingest([jobFact(job), attemptFact({ job: job.id, epoch: 1, node: A, basis: 0, claimedAt: 1, startedAt: 1,
      endedAt: 2, failReason: 'lost' })])
    expect(t.get(job.id)?.derived).toMatchObject({ state: 'ready', epoch: 1 })
  })

  it('ignores a spec from a peer with a NUL byte in its command, environment or cwd: no node could start it', () => {
    const t = table()
    const bad = [spec(1, { cmd: ['echo', 'a\u0000b'] }), spec(2, { env: { A: 'x\u0000' } }),
      spec(3, { env: { 'A\u0000': 'x' } }), spec(4, { cwd: '/\u0000' })]
    t.ingest([...bad.map(jobFact), jobFact(spec(5))])
    for (const job of bad) expect(t.get(job.id)).toBeUndefined()
    expect(t.get(spec(5).id)?.derived.state).toBe('ready')
  })

  it('ignores a spec whose id is not a job id: ids name directories of output files', () => {
    const t = table()
    const bad = ['../../x', 'segaaa-0', 'segaaa-1/..', 'SEGAAA-1'].map(id => spec(1, { id: id as JobId }))
    t.ingest(bad.map(jobFact))
    for (const job of bad) expect(t.get(job.id)).toBeUndefined()
  })

  it('keeps dependants pending with a reason, and fails them (dependency-failed) when a dependency failed', () => {
    const t = table()
    const first = spec(1)
    const second = spec(2, { after: [first.id] })
    const third = spec(3, { afterGroup: ['g'] })
    const member = spec(4, { group: 'g' })
    t.ingest([jobFact(first), jobFact(second), jobFact(third), jobFact(member)])
    expect(t.get(second.id)?.derived).toMatchObject({ state: 'pending', reason: `waiting for job ${first.id}` })
    expect(t.get(third.id)?.derived).toMatchObject({ state: 'pending', reason: 'waiting for group g (0/1 done)' })
    t.ingest([attemptFact({ job: first.id, epoch: 1, node: A, basis: 0, claimedAt: 1, startedAt: 1,
      endedAt: 2, exitCode: 1, failReason: 'non-zero-exit' })])
    expect(t.get(second.id)?.derived).toMatchObject({ state: 'failed', reason: `dependency-failed: job ${first.id} failed` })
    t.ingest([attemptFact({ job: member.id, epoch: 1, node: A, basis: 0, claimedAt: 1, startedAt: 1, endedAt: 2, exitCode: 0 })])
    expect(t.get(third.id)?.derived.state).toBe('ready')
  })

  it('fails dependants transitively and through groups, and a retry of the dependency brings them all back', () => {
    const t = table()
    const root = spec(1, { group: 'g' })
    const child = spec(2, { after: [root.id] })
    const grandchild = spec(3, { after: [child.id] })
    const groupDependant = spec(4, { afterGroup: ['g'] })
    t.ingest([root, child, grandchild, groupDependant].map(jobFact))
    t.ingest([controlFact(root.id, { kind: 'kill', lamport: 1, by: A, at: 1 })])
    expect(t.get(child.id)?.derived).toMatchObject({ state: 'failed', reason: `dependency-failed: job ${root.id} killed` })
    expect(t.get(grandchild.id)?.derived).toMatchObject({ state: 'failed', reason: `dependency-failed: job ${child.id} failed` })
    expect(t.get(groupDependant.id)?.derived).toMatchObject({
      state: 'failed', reason: `dependency-failed: job ${root.id} of group g killed`
    })
    t.ingest([controlFact(root.id, { kind: 'retry', lamport: 2, by: A, at: 2 })])
    expect(t.get(root.id)?.derived.state).toBe('ready')
    expect(t.get(child.id)?.derived).toMatchObject({ state: 'pending', reason: `waiting for job ${root.id}` })
    expect(t.get(grandchild.id)?.derived).toMatchObject({ state: 'pending', reason: `waiting for job ${child.id}` })
    expect(t.get(groupDependant.id)?.derived).toMatchObject({ state: 'pending', reason: 'waiting for group g (0/1 done)' })
  })

  it('runs --after-any and --after-group-any jobs once their dependencies end, whatever the outcome', () => {
    const t = table()
    const first = spec(1, { group: 'g' })
    const second = spec(2, { group: 'g' })
    const any = spec(3, { afterAny: [first.id] })
    const groupAny = spec(4, { afterGroupAny: ['g'] })
    t.ingest([first, second, any, groupAny].map(jobFact))
    expect(t.get(any.id)?.derived).toMatchObject({ state: 'pending', reason: `waiting for job ${first.id} to end` })
    t.ingest([attemptFact({ job: first.id, epoch: 1, node: A, basis: 0, claimedAt: 1, startedAt: 1,
      endedAt: 2, exitCode: 1, failReason: 'non-zero-exit' })])
    expect(t.get(any.id)?.derived.state).toBe('ready')
    expect(t.get(groupAny.id)?.derived).toMatchObject({ state: 'pending', reason: 'waiting for group g to end (1/2 ended)' })
    t.ingest([attemptFact({ job: second.id, epoch: 1, node: A, basis: 0, claimedAt: 1, startedAt: 1, endedAt: 2, exitCode: 0 })])
    expect(t.get(groupAny.id)?.derived.state).toBe('ready')
  })

  it('holds a paused group until resumed or until the pause lapses', () => {
    const clock = new FakeClock()
    const t = table(clock)
    const job = spec(1, { group: 'g' })
    t.ingest([jobFact(job), { doc: 'meta', map: MetaMap.pauses, key: groupFactKey('g', 1, A),
      value: { paused: true, until: clock.now() + 5000, lamport: 1, by: A } }])
    expect(t.get(job.id)?.derived.reason).toMatch(/group g paused until/)
    clock.advance(5000)
    t.wakeDue()
    expect(t.get(job.id)?.derived.state).toBe('ready')
  })

  it('orders ready jobs by priority, then submit order', () => {
    const t = table()
    const jobs = [spec(1), spec(2, { pri: 5 }), spec(3), spec(4, { pri: 5 })]
    t.ingest(jobs.map(jobFact))
    const order: string[] = []
    t.takeReady(s => { order.push(s.id); return true })
    expect(order).toEqual(['segaaa-2', 'segaaa-4', 'segaaa-1', 'segaaa-3'])
  })
})

/** A small deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function rng (seed: number): () => number {
  return () => {
    seed = (seed + 0x6D2B79F5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function randomHistory (random: () => number): FactChange[] {
  const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)]
  const facts: FactChange[] = []
  const specs: JobSpec[] = []
  for (let n = 1; n <= 12; n++) {
    const earlier = specs.filter(() => random() < 0.2).map(s => s.id)
    const s = spec(n, {
      after: earlier,
      group: pick(['a', 'b', undefined]),
      afterGroup: random() < 0.15 ? [pick(['a', 'b'])] : [],
      afterAny: random() < 0.1 ? specs.filter(() => random() < 0.2).map(s => s.id) : undefined,
      afterGroupAny: random() < 0.1 ? ['b'] : undefined,
      retries: Math.floor(random() * 3)
    })
    specs.push(s)
    facts.push(jobFact(s))
    let lamport = 0
    for (let epoch = 1; epoch <= Math.floor(random() * 4); epoch++) {
      const node = pick([A, B])
      const ended = random() < 0.8
      const exitCode = ended ? pick([0, 1, 2]) : undefined
      facts.push(attemptFact({
        job: s.id, epoch, node, basis: lamport, claimedAt: epoch, startedAt: epoch, endedAt: ended ? epoch + 1 : undefined,
        exitCode, failReason: exitCode === 0 || !ended ? undefined : pick(['non-zero-exit', 'lost'] as const)
      }))
      if (random() < 0.3) {
        lamport++
        facts.push(controlFact(s.id, { kind: pick(['kill', 'retry', 'rm'] as const), lamport, by: pick([A, B]), at: epoch }))
      }
    }
  }
  if (random() < 0.5) facts.push({ doc: 'meta', map: MetaMap.pauses, key: groupFactKey('a', 1, A),
    value: { paused: true, lamport: 1, by: A } })
  return facts
}

function shuffled<T> (items: T[], random: () => number): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

function snapshot (t: JobTable): Record<string, unknown> {
  return Object.fromEntries([...t.all()].map(([id, e]) => [id, { state: e.derived.state, reason: e.derived.reason }]))
}

describe('mod', () => {
  const mod = (job: JobId, lamport: number, by: PeerIdString, patch: Control['patch']): FactChange =>
    controlFact(job, { kind: 'mod', lamport, by, at: lamport, patch })

  it('changes the spec, later stamps winning field by field whatever the arrival order', () => {
    const job = spec(1, { retries: 0 })
    const facts = [jobFact(job), mod(job.id, 1, A, { pri: 5, retries: 2 }), mod(job.id, 2, B, { pri: 9 })]
    for (const order of [facts, [facts[0], facts[2], facts[1]], [facts[2], facts[1], facts[0]]]) {
      const t = table()
      t.ingest(order)
      expect(t.get(job.id)?.facts.spec).toMatchObject({ pri: 9, retries: 2 })
      expect(t.get(job.id)?.submitted?.pri).toBe(0)
    }
  })

  it('reorders the run queue', () => {
    const t = table()
    const [first, second] = [spec(1), spec(2)]
    t.ingest([jobFact(first), jobFact(second), mod(second.id, 1, A, { pri: 1 })])
    const order: string[] = []
    t.takeReady(s => { order.push(s.id); return true })
    expect(order).toEqual([second.id, first.id])
  })

  it('ignores a malformed patch', () => {
    const t = table()
    const job = spec(1)
    t.ingest([
      jobFact(job),
      mod(job.id, 1, A, { pri: 'high' } as unknown as Control['patch']),
      mod(job.id, 2, A, { cmd: ['rm', '-rf', '/'] } as unknown as Control['patch'])
    ])
    expect(t.get(job.id)?.facts.spec).toEqual(job)
  })
})

describe('replicas', () => {
  it('derive the same states from the same facts in any order (400 random histories)', () => {
    for (let seed = 1; seed <= 400; seed++) {
      const random = rng(seed)
      const history = randomHistory(random)
      const reference = table()
      reference.ingest(history)
      const expected = snapshot(reference)
      for (let replica = 0; replica < 4; replica++) {
        const t = table()
        // deliver the facts in random order and in random batches, as sync would
        const order = shuffled(history, random)
        while (order.length > 0) t.ingest(order.splice(0, 1 + Math.floor(random() * 5)))
        expect(snapshot(t), `seed ${seed}, replica ${replica}`).toEqual(expected)
      }
    }
  })
})
