import { describe, expect, it } from 'vitest'
import { SegmentAllocator } from '../src/crdt/segment-allocator.js'
import { WriteBatcher } from '../src/crdt/write-batcher.js'
import type { FactChange } from '../src/crdt/facts.js'

/** An allocator of capacity 3 whose segments are named s0, s1, ... by index, recording the indices it opened. */
function allocator (): { alloc: SegmentAllocator, opened: number[] } {
  const opened: number[] = []
  const alloc = new SegmentAllocator(3, async index => {
    await new Promise(resolve => setImmediate(resolve))
    opened.push(index)
    return `s${index}`
  })
  return { alloc, opened }
}

const fact = (doc: string, key: string): FactChange => ({ doc, map: 'jobs', key, value: {} })

describe('SegmentAllocator', () => {
  it('numbers jobs within a segment and in submit order across segments, opening one segment per fill even when asked at once', async () => {
    const { alloc, opened } = allocator()
    const [a, b] = await Promise.all([alloc.allocate(2), alloc.allocate(2)])
    expect([...a, ...b].map(s => [s.id, s.seq])).toEqual([['s0-1', 1], ['s0-2', 2], ['s0-3', 3], ['s1-1', 4]])
    expect(opened).toEqual([0, 1])
  })

  it('continues a segment loaded from the store, after the segments it opened before, and leaves a closed one', async () => {
    const { alloc, opened } = allocator()
    alloc.noteOwn(4)
    alloc.resume('s4', 2, 4)
    expect((await alloc.allocate(1)).map(s => s.id)).toEqual(['s4-3'])
    alloc.resume('s4', 1, 4)
    alloc.close('s4')
    expect((await alloc.allocate(1)).map(s => s.id)).toEqual(['s5-1'])
    expect(opened).toEqual([5])
  })
})

describe('WriteBatcher', () => {
  it('commits the writes of one turn together, synced if any asked for it', async () => {
    const commits: Array<{ keys: string[], sync: boolean }> = []
    const batcher = new WriteBatcher(async (facts, sync) => { commits.push({ keys: facts.map(f => f.key), sync }) })
    await Promise.all([batcher.put([fact('a', '1'), fact('b', '2')], false), batcher.put([fact('a', '3')], true)])
    await batcher.put([fact('a', '4')], false)
    expect(commits).toEqual([{ keys: ['1', '2', '3'], sync: true }, { keys: ['4'], sync: false }])
  })

  it('gives every writer of a failed batch its error, and commits later writes', async () => {
    let fail = true
    const committed: string[] = []
    const batcher = new WriteBatcher(async facts => {
      if (fail) throw new Error('disk full')
      committed.push(...facts.map(f => f.key))
    })
    const results = await Promise.allSettled([batcher.put([fact('a', '1')], true), batcher.put([fact('b', '2')], false)])
    expect(results.map(r => r.status === 'rejected' ? (r.reason as Error).message : 'ok')).toEqual(['disk full', 'disk full'])
    fail = false
    expect(batcher.waitsFor('a')).toBe(false)
    const later = batcher.put([fact('a', '3')], false)
    expect(batcher.waitsFor('a')).toBe(true)
    await later
    await batcher.drain()
    expect(committed).toEqual(['3'])
  })
})
