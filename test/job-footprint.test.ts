/** What the job table shares between queued jobs to keep them small (docs/scale.md, "Memory per queued job"). */
import { describe, expect, it } from 'vitest'
import { JobEventLog } from '../src/node/job-events.js'
import type { EventFacts } from '../src/node/job-events.js'
import { noFacts, withFact } from '../src/sched/fact-maps.js'
import { SpecPool } from '../src/sched/spec-pool.js'
import type { JobId, JobSpec } from '../src/types.js'
import { A, B, attemptFact, controlFact, jobFact, spec, table } from './table-fixtures.js'

/** A spec as parsed from its fact: strings and lists of its own. */
const parsed = (n: number, extra: Partial<JobSpec> = {}): JobSpec => JSON.parse(JSON.stringify(spec(n, extra))) as JobSpec

describe('shared empty maps of facts', () => {
  it('refuses writes, and withFact gives a job its own map with its first fact', () => {
    const empty = noFacts<number>()
    expect(() => empty.set('x', 1)).toThrow(/read-only/)
    const own = withFact(empty, 'x', 1)
    expect(own).not.toBe(empty)
    expect([...own]).toEqual([['x', 1]])
    expect(withFact(own, 'y', 2)).toBe(own)
    expect(empty.size).toBe(0)
  })

  it('keeps the facts of one job out of every other queued job', () => {
    const t = table()
    t.ingest([jobFact(spec(1)), jobFact(spec(2)), jobFact(spec(3))])
    t.ingest([attemptFact({ job: spec(1).id, epoch: 1, node: A, basis: 0, claimedAt: 1, startedAt: 1 })])
    t.ingest([controlFact(spec(2).id, { kind: 'kill', lamport: 1, by: B, at: 2 })])
    expect(t.get(spec(1).id)?.facts.attempts.size).toBe(1)
    expect(t.get(spec(1).id)?.derived.state).toBe('running')
    expect(t.get(spec(2).id)?.facts.controls.size).toBe(1)
    expect(t.get(spec(2).id)?.derived.state).toBe('killed')
    expect(t.get(spec(3).id)?.facts.attempts.size).toBe(0)
    expect(t.get(spec(3).id)?.facts.controls.size).toBe(0)
    expect(t.get(spec(3).id)?.derived.state).toBe('ready')
  })
})

describe('spec pool', () => {
  it('makes specs share their cwd, group, submitter, environment and empty lists', () => {
    const pool = new SpecPool()
    const env = { PATH: '/usr/bin', HOME: '/home/u' }
    const [a, b] = [1, 2].map(n => pool.compact(parsed(n, { cwd: '/work/dir', group: 'G', env })))
    expect(a.env).toBe(b.env)
    expect(a.env).toEqual(env)
    expect(a.after).toBe(b.after)
    expect(a.tags).toBe(b.tags)
    expect(a.afterGroup).toBe(b.afterGroup)
    expect([a.cwd, a.group, a.submitter]).toEqual(['/work/dir', 'G', A])
  })

  it('keeps distinct environments and non-empty lists apart', () => {
    const pool = new SpecPool()
    const a = pool.compact(parsed(1, { env: { K: '1' }, after: [spec(9).id], tags: ['gpu'] }))
    const b = pool.compact(parsed(2, { env: { K: '2' } }))
    expect(a.env).toEqual({ K: '1' })
    expect(b.env).toEqual({ K: '2' })
    expect(a.after).toEqual([spec(9).id])
    expect(a.tags).toEqual(['gpu'])
    expect(b.tags).toEqual([])
  })

  it('freezes what it shares, so that a write cannot change another job', () => {
    const pool = new SpecPool()
    const a = pool.compact(parsed(1, { env: { K: '1' } }))
    const b = pool.compact(parsed(2, { env: { K: '1' } }))
    expect(() => { (a.env).K = '2' }).toThrow(TypeError)
    expect(() => { a.tags.push('x') }).toThrow(TypeError)
    expect(b.env.K).toBe('1')
    expect(b.tags).toEqual([])
  })

  it('leaves a malformed field as it is', () => {
    const pool = new SpecPool()
    const odd = parsed(1)
    delete (odd as Partial<JobSpec>).submitter
    expect(pool.compact(odd).submitter).toBeUndefined()
  })

  it('gives the table specs that share their environment', () => {
    const t = table()
    const env = { PATH: '/usr/bin' }
    t.ingest([jobFact(parsed(1, { env })), jobFact(parsed(2, { env }))])
    expect(t.get(spec(1).id)?.facts.spec.env).toBe(t.get(spec(2).id)?.facts.spec.env)
  })
})

describe('events reported per job', () => {
  it('reports each event of a job once, however often the job changes, and keeps jobs apart', () => {
    const log = new JobEventLog(() => 5000)
    const seen: string[] = []
    log.subscribe(e => seen.push(`${e.job} ${e.event}`))
    const facts = (id: string, attempts: EventFacts['attempts'] = []): EventFacts =>
      ({ id: id as JobId, retries: 0, submittedAt: 1000, attempts, controls: [] })
    const [one, two] = [{}, {}]
    const run = { epoch: 1, node: A, basis: 0, claimedAt: 2000, startedAt: 2000, lost: false, running: true }
    log.touch(one, () => facts('segaaa-1'))
    log.touch(two, () => facts('segaaa-2'))
    log.settle(true)
    log.touch(one, () => facts('segaaa-1'))
    log.settle(true)
    log.touch(one, () => facts('segaaa-1', [run]))
    log.settle(true)
    log.touch(one, () => facts('segaaa-1', [run]))
    log.settle(true)
    expect(seen).toEqual(['segaaa-1 submitted', 'segaaa-2 submitted', 'segaaa-1 started'])
  })
})
