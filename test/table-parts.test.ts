/** The collaborators of the job table (src/sched/), each on its own; test/table.test.ts tests them together through JobTable. */
import { describe, expect, it } from 'vitest'
import { FakeClock } from '../src/clock.js'
import type { Derived } from '../src/crdt/derive.js'
import { ArrayBook } from '../src/sched/array-book.js'
import { GroupControls } from '../src/sched/group-controls.js'
import { GroupCounts } from '../src/sched/group-counts.js'
import { JobLinks } from '../src/sched/job-links.js'
import { RunQueue, runsBefore } from '../src/sched/run-order.js'
import { SegmentCounts } from '../src/sched/segment-counts.js'
import type { JobId, JobState } from '../src/types.js'
import { A, B, spec } from './table-fixtures.js'

const id = (n: number): JobId => `segaaa-${n}` as JobId
const derived = (state: JobState, extra: Partial<Derived> = {}): Derived => ({ state, removed: false, lamport: 0, epoch: 0, ...extra })

describe('run order', () => {
  it('puts higher priority first, then submit time, sequence, task index and id', () => {
    expect(runsBefore(spec(2, { pri: 1 }), spec(1))).toBe(true)
    expect(runsBefore(spec(1), spec(2))).toBe(true)
    expect(runsBefore(spec(1, { seq: 1 }), spec(1, { seq: 2, id: id(0) }))).toBe(true)
    expect(runsBefore(spec(1, { arrayIndex: 2 }), spec(1, { arrayIndex: 10 }))).toBe(true)
    expect(runsBefore(spec(1), spec(1, { arrayIndex: 1 }))).toBe(true) // an array's spec before its tasks
    expect(runsBefore(spec(1, { id: id(1) }), spec(1, { id: id(2) }))).toBe(true)
    expect(runsBefore(spec(1), spec(1))).toBe(false)
  })

  it('pops ready jobs in run order and hands out wake-ups once they are due', () => {
    const queue = new RunQueue()
    for (const s of [spec(3), spec(1), spec(2, { pri: 9 })]) queue.push(s)
    expect([queue.pop(), queue.pop(), queue.pop(), queue.pop()].map(s => s?.id)).toEqual([id(2), id(1), id(3), undefined])
    queue.wakeAt(5000, id(1))
    queue.wakeAt(3000, id(2))
    queue.wakeAt(3000, id(3))
    expect(queue.nextWakeup()).toBe(3000)
    expect(queue.due(2999)).toEqual(new Set())
    expect(queue.due(4000)).toEqual(new Set([id(2), id(3)]))
    expect(queue.nextWakeup()).toBe(5000)
  })
})

describe('group controls', () => {
  it('keeps the latest pause by stamp, and a timed pause lapses on the clock', () => {
    const clock = new FakeClock()
    const controls = new GroupControls(clock)
    expect(controls.offerPause('g', { paused: true, until: clock.now() + 1000, lamport: 2, by: A })).toBe(true)
    expect(controls.offerPause('g', { paused: false, lamport: 1, by: B })).toBe(false) // an older resume
    expect(controls.offerPause('g', { paused: false, lamport: 2, by: A })).toBe(false) // the same stamp
    expect(controls.activePause('g')).toEqual({ until: clock.now() + 1000 })
    expect(controls.pauseStamp('g')).toBe(2)
    clock.advance(1000)
    expect(controls.activePause('g')).toBeUndefined()
    expect(controls.activePause('other')).toBeUndefined()
  })

  it('names the caps a job runs under: its group limit and its array limit', () => {
    const controls = new GroupControls(new FakeClock())
    controls.offerLimit('g', { limit: 2, lamport: 1, by: A })
    controls.offerLimit('h', { limit: 3, lamport: 1, by: A })
    controls.offerLimit('h', { limit: null, lamport: 2, by: A }) // lifted
    expect(controls.capsOf(spec(1, { group: 'g', arrayId: id(9), arrayLimit: 4 }))).toEqual([
      { key: 'group g', limit: 2 }, { key: `array ${id(9)}`, limit: 4 }
    ])
    expect(controls.capsOf(spec(2, { group: 'h' }))).toEqual([])
    expect([...controls.limited()]).toEqual([['g', 2]])
    expect(controls.limitStamp('h')).toBe(2)
  })
})

describe('group counts', () => {
  it('counts done and failed jobs and names the same failed job on every replica', () => {
    const counts = new GroupCounts((a, b) => a > b) // any fixed submit order
    counts.count({ id: id(1), group: 'g' }, derived('done'), +1, 1)
    counts.count({ id: id(3), group: 'g' }, derived('failed'), +1, 1)
    counts.count({ id: id(2), group: 'g' }, derived('killed'), +1, 1)
    counts.count({ id: id(4), group: 'g' }, derived('failed', { inheritedFailure: true }), +1, 1)
    counts.count({ id: id(5), group: 'g' }, derived('failed', { inheritedFailure: true }), +1, 1)
    counts.count({ id: id(6), group: 'g' }, derived('ready', { removed: true }), +1, 1) // removed: in no group
    counts.count({ id: id(7), group: 'g' }, derived('ready'), +1, 10) // ten untouched tasks
    expect(counts.progress('g')).toEqual({ total: 15, done: 1, ended: 5, failed: id(2), inherited: id(5) })
    counts.count({ id: id(2), group: 'g' }, derived('killed'), -1, 1)
    expect(counts.progress('g')).toMatchObject({ total: 14, ended: 4, failed: id(3) })
    expect(counts.progress('none')).toEqual({ total: 0, done: 0, ended: 0 })
  })
})

describe('segment counts', () => {
  it('calls a segment settled once it is full and nothing in it is unfinished; a removed job counts as settled', () => {
    const segments = new SegmentCounts()
    segments.count(id(1), derived('running'), 1, 1)
    segments.count(id(2), derived('ready', { removed: true }), 1, 1)
    expect(segments.settled('segaaa', 2)).toBe(false)
    segments.count(id(1), derived('running'), -1, -1)
    segments.count(id(1), derived('done'), 1, 1)
    expect(segments.settled('segaaa', 2)).toBe(true)
    expect(segments.settled('segaaa', 3)).toBe(false) // not full
    segments.forget('segaaa')
    expect(segments.settled('segaaa', 2)).toBe(false)
  })

  it('counts an array once however many tasks it has', () => {
    const book = new ArrayBook()
    const segments = new SegmentCounts()
    segments.countArraySpec(id(1))
    for (const task of ['segaaa-1[1]', 'segaaa-1[2]'] as JobId[]) {
      segments.count(task, derived('done'), book.count(task, derived('done'), 1), 1)
    }
    expect(book.state(id(1))).toBe('done')
    expect(segments.settled('segaaa', 1)).toBe(true)
    expect(segments.settled('segaaa', 2)).toBe(false)
  })
})

describe('job links', () => {
  it('links a job to what it waits for and to its group', () => {
    const links = new JobLinks()
    links.link(spec(3, { after: [id(1)], afterAny: [id(2)], afterGroup: ['g'], group: 'h' }))
    expect([...links.dependantsOf(id(1))]).toEqual([id(3)])
    expect([...links.dependantsOf(id(2))]).toEqual([id(3)])
    expect([...links.groupDependantsOf('g')]).toEqual([id(3)])
    expect([...links.membersOf('h')]).toEqual([id(3)])
    links.removeMember('h', id(3))
    expect([...links.membersOf('h')]).toEqual([])
  })

  it('gives an idempotency key to the first submitted of its jobs, whatever the arrival order', () => {
    const first = spec(1, { key: 'k', pri: 0 })
    const second = spec(2, { key: 'k', pri: 9 })
    const specs = new Map([first, second].map(s => [s.id, s]))
    for (const order of [[first, second], [second, first]]) {
      const links = new JobLinks()
      for (const s of order) links.claimKey(s, holder => specs.get(holder))
      expect(links.byKey('k')).toBe(first.id)
    }
  })

  it('lets a sealed job keep a key only if no job holds it, and release only its own', () => {
    const links = new JobLinks()
    links.claimKey(spec(2, { key: 'k' }), () => undefined)
    links.keepKey('k', id(1))
    expect(links.byKey('k')).toBe(id(2))
    links.releaseKey('k', id(1))
    expect(links.byKey('k')).toBe(id(2))
    links.releaseKey('k', id(2))
    links.keepKey('k', id(1))
    expect(links.byKey('k')).toBe(id(1))
  })
})
