/** Job arrays in the job table: one spec, tasks derived, untouched tasks kept as one record. */
import { describe, expect, it } from 'vitest'
import { validFact } from '../src/crdt/facts.js'
import type { FactChange } from '../src/crdt/facts.js'
import type { JobTable } from '../src/sched/table.js'
import { ArraySpecError, parseArraySpec, splitTaskId } from '../src/array-task.js'
import { OFFERED_PER_WALK } from '../src/sched/array-tasks.js'
import type { JobId, JobSpec } from '../src/types.js'
import { A, attemptFact, controlFact, jobFact, spec, table } from './table-fixtures.js'

const array = (n: number, first: number, last: number, extra: Partial<JobSpec> = {}): JobSpec =>
  spec(n, { array: { first, last, step: 1 }, ...extra })
const ended = (job: string, exitCode: number): FactChange => attemptFact({
  job: job as JobId, epoch: 1, node: A, basis: 0, claimedAt: 1, startedAt: 1, endedAt: 2, exitCode, failReason: exitCode === 0 ? undefined : 'non-zero-exit'
})
const kill = (job: string): FactChange => controlFact(job as JobId, { kind: 'kill', lamport: 1, by: A, at: 3 })

/** Takes up to `n` ready jobs off the run queue, in run order. */
function take (t: JobTable, n: number): string[] {
  const taken: string[] = []
  t.takeReady(s => {
    taken.push(s.id)
    return taken.length >= n ? 'stop' : true
  })
  // 'stop' leaves the last one queued: it was taken here all the same
  return taken
}

describe('job arrays in the job table', () => {
  it('keeps a million queued tasks as one record: no entry per task until one is touched', () => {
    const t = table()
    t.ingest([jobFact(array(1, 1, 1_000_000))])
    expect([...t.all()]).toHaveLength(0)
    expect(t.array('segaaa-1')).toMatchObject({ total: 1_000_000, states: { ready: 1_000_000 } })
    expect(t.get('segaaa-1[777]')?.facts.spec).toMatchObject({ id: 'segaaa-1[777]', arrayId: 'segaaa-1', arrayIndex: 777 })
    expect(t.get('segaaa-1[0]')).toBeUndefined()
    expect(t.get('segaaa-1[1000001]')).toBeUndefined()
    expect([...t.all()]).toHaveLength(0) // reading a task does not touch it
  })

  it('offers tasks in index order, and a task taken gets an entry of its own', () => {
    const t = table()
    t.ingest([jobFact(array(1, 5, 9))])
    expect(take(t, 3)).toEqual(['segaaa-1[5]', 'segaaa-1[6]', 'segaaa-1[7]'])
    expect([...t.all()].map(([id]) => id).sort()).toEqual(['segaaa-1[5]', 'segaaa-1[6]'])
    expect(t.array('segaaa-1')?.states.ready).toBe(5)
    t.ingest([ended('segaaa-1[6]', 0)])
    expect(t.array('segaaa-1')?.states).toMatchObject({ ready: 4, done: 1 })
    expect(t.arrayState('segaaa-1')).toBe('ready')
  })

  it('offers the tasks after one passed over (claimed elsewhere), and takes only the one chosen', () => {
    const t = table()
    t.ingest([jobFact(array(1, 1, 1000))])
    const offered: string[] = []
    t.takeReady(s => {
      offered.push(s.id)
      return s.id === 'segaaa-1[3]' ? true : (offered.length < 5 ? false : 'stop')
    })
    expect(offered).toEqual(['segaaa-1[1]', 'segaaa-1[2]', 'segaaa-1[3]', 'segaaa-1[1]', 'segaaa-1[2]'])
    expect([...t.all()].map(([id]) => id)).toEqual(['segaaa-1[3]'])
    expect(t.array('segaaa-1')?.states.ready).toBe(1000)
  })

  it('offers at most OFFERED_PER_WALK tasks of one array per walk', () => {
    const t = table()
    t.ingest([jobFact(array(1, 1, 1_000_000)), jobFact(spec(2))])
    const offered: string[] = []
    t.takeReady(s => { offered.push(s.id); return false })
    expect(offered).toHaveLength(OFFERED_PER_WALK + 1)
    expect(offered.at(-1)).toBe('segaaa-2') // the walk went on past the array
  })

  it('takes in facts about a task before and after the array\'s spec', () => {
    const t = table()
    t.ingest([ended('segaaa-1[2]', 0)])
    t.ingest([jobFact(array(1, 1, 3))])
    expect(t.get('segaaa-1[2]')?.derived.state).toBe('done')
    t.ingest([ended('segaaa-1[1]', 4), kill('segaaa-1[3]')])
    expect(t.array('segaaa-1')?.states).toMatchObject({ done: 1, failed: 1, killed: 1 })
    expect(t.arrayState('segaaa-1')).toBe('failed')
  })

  it('holds --after ARRAY until every task succeeded; fails it when a task failed and all ended', () => {
    const t = table()
    const after = spec(2, { after: ['segaaa-1' as JobId] })
    t.ingest([jobFact(array(1, 1, 2)), jobFact(after)])
    expect(t.get(after.id)?.derived.state).toBe('pending')
    t.ingest([ended('segaaa-1[1]', 0)])
    expect(t.get(after.id)?.derived.state).toBe('pending')
    t.ingest([ended('segaaa-1[2]', 0)])
    expect(t.get(after.id)?.derived.state).toBe('ready')
    const second = spec(3, { after: ['segaaa-4' as JobId] })
    t.ingest([jobFact(array(4, 1, 2)), jobFact(second), ended('segaaa-4[1]', 1)])
    expect(t.get(second.id)?.derived.state).toBe('pending') // task 2 has not ended
    t.ingest([ended('segaaa-4[2]', 0)])
    expect(t.get(second.id)?.derived).toMatchObject({ state: 'failed', reason: 'dependency-failed: job segaaa-4 failed' })
  })

  it('gives every untouched task an entry when a dependency failed, so that each ends and is reported', () => {
    const t = table()
    const changed: string[] = []
    t.onChange(id => changed.push(id))
    t.ingest([jobFact(spec(1)), jobFact(array(2, 1, 3, { after: ['segaaa-1' as JobId] }))])
    expect(t.array('segaaa-2')?.states.pending).toBe(3)
    t.ingest([ended('segaaa-1', 1)])
    expect(t.array('segaaa-2')?.states.failed).toBe(3)
    expect(changed).toEqual(expect.arrayContaining(['segaaa-2[1]', 'segaaa-2[2]', 'segaaa-2[3]']))
    expect(t.get('segaaa-2[3]')?.derived.reason).toMatch(/dependency-failed/)
  })

  it('counts an array\'s untouched tasks in its group, and an array spec once in its segment', () => {
    const t = table()
    t.ingest([jobFact(array(1, 1, 4, { group: 'g' })), jobFact(spec(2, { afterGroup: ['g'] }))])
    expect(t.groupJobs('g')).toHaveLength(4)
    for (const i of [1, 2, 3]) t.ingest([ended(`segaaa-1[${i}]`, 0)])
    expect(t.get('segaaa-2')?.derived.reason).toBe('waiting for group g (3/4 done)')
    t.ingest([ended('segaaa-1[4]', 0)])
    expect(t.get('segaaa-2')?.derived.state).toBe('ready')
    expect(t.segmentSettled('segaaa', 2)).toBe(false)
    t.ingest([ended('segaaa-2', 0)])
    expect(t.segmentSettled('segaaa', 2)).toBe(true)
  })

  it('keeps a sealed array\'s state and record summary, and takes its segment back when it is loaded again', () => {
    const t = table()
    const facts = [jobFact(array(1, 1, 2, { group: 'g' })), ended('segaaa-1[1]', 0), ended('segaaa-1[2]', 3)]
    t.ingest(facts)
    expect(t.segmentSettled('segaaa', 1)).toBe(true)
    const summaries = t.evict('segaaa')
    expect(summaries.map(j => j.id).sort()).toEqual(['segaaa-1[1]', 'segaaa-1[2]'])
    expect(t.sealedJob('segaaa-1')).toMatchObject({ state: 'failed', array: true, group: 'g' })
    expect(t.array('segaaa-1')?.spec).toBeUndefined()
    expect(t.arrayState('segaaa-1')).toBe('failed')
    // a restart: the summaries alone, the array's not counted as a job of its group
    const restarted = table()
    restarted.addSealed([...summaries, t.sealedJob('segaaa-1') as NonNullable<ReturnType<JobTable['sealedJob']>>])
    expect(restarted.arrayState('segaaa-1')).toBe('failed')
    restarted.ingest([jobFact(spec(9, { afterGroupAny: ['g'] }))])
    expect(restarted.get('segaaa-9')?.derived.state).toBe('ready')
    // loaded again (unsealed): the same states, counted once
    t.ingest(facts)
    expect(t.sealedJob('segaaa-1')).toBeUndefined()
    expect(t.array('segaaa-1')).toMatchObject({ total: 2, states: { done: 1, failed: 1 } })
  })

  it('drops an array of a group with its segment (meshq gc) without counting the group short', () => {
    const t = table()
    t.ingest([jobFact(array(1, 1, 2, { group: 'g' })), ended('segaaa-1[1]', 0), ended('segaaa-1[2]', 0)])
    t.evict('segaaa')
    t.drop(new Set(['segaaa']))
    const other = spec(1, { id: 'segbbb-1' as JobId, group: 'g' })
    const waiter = spec(2, { id: 'segbbb-2' as JobId, afterGroup: ['g'] })
    t.ingest([{ ...jobFact(other), doc: 'segbbb' }, { ...jobFact(waiter), doc: 'segbbb' }])
    expect(t.get('segbbb-2')?.derived.reason).toBe('waiting for group g (0/1 done)')
  })

  it('caps an array with --array-limit as a cap of its own', () => {
    const t = table()
    t.ingest([jobFact(array(1, 1, 3, { arrayLimit: 2, group: 'g' }))])
    expect(t.capsOf(t.get('segaaa-1[1]')?.facts.spec as JobSpec)).toEqual([{ key: 'array segaaa-1', limit: 2 }])
  })
})

describe('array specs and ids', () => {
  it('parses Slurm\'s --array forms and refuses bad ones with a message that says why', () => {
    expect(parseArraySpec('7')).toEqual({ range: { first: 7, last: 7, step: 1 }, limit: undefined })
    expect(parseArraySpec('0-99:3%10')).toEqual({ range: { first: 0, last: 99, step: 3 }, limit: 10 })
    for (const [bad, why] of [['5-1', /ends before/], ['1-x', /expected A-B/], ['1-3:0', /step/], ['1-20000000', /at most/], ['1-3%0', /LIMIT/]] as const) {
      expect(() => parseArraySpec(bad)).toThrow(ArraySpecError)
      expect(() => parseArraySpec(bad)).toThrow(why)
    }
    expect(splitTaskId('abc234-4[17]')).toEqual({ array: 'abc234-4', index: 17 })
    expect(splitTaskId('abc234-4')).toBeUndefined()
    expect(splitTaskId('abc234-4[01]')).toBeUndefined()
  })

  it('accepts array specs from peers only with a sane range, and never a task in the ledger', () => {
    expect(validFact(jobFact(array(1, 1, 10)))).toBe(true)
    expect(validFact(jobFact(array(1, 10, 1)))).toBe(false)
    expect(validFact(jobFact(spec(1, { array: { first: 0, last: 1e9, step: 1 } })))).toBe(false)
    expect(validFact(jobFact(spec(1, { id: 'segaaa-1[2]' as JobId })))).toBe(false)
    expect(validFact(jobFact(array(1, 1, 3, { arrayLimit: 0 })))).toBe(false)
  })
})
