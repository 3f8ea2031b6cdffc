import { describe, expect, it } from 'vitest'
import { FakeClock } from '../src/clock.js'
import { IdleMemory, type HeapSize } from '../src/node/idle-memory.js'

const MiB = 2 ** 20

/** An IdleMemory on a fake clock, with a fake heap that the collection shrinks to what is in use. */
function quietNode (options: { busy?: boolean, spare?: number } = {}) {
  const clock = new FakeClock()
  const listeners = new Set<() => void>()
  const state = { busy: options.busy ?? false, collections: 0 }
  let heap: HeapSize = { total: 30 * MiB + (options.spare ?? 60 * MiB), used: 30 * MiB }
  const memory = new IdleMemory({
    clock,
    onChange: listener => { listeners.add(listener); return () => listeners.delete(listener) },
    busy: () => state.busy,
    quietMs: 10_000,
    spareBytes: 16 * MiB,
    heap: () => heap,
    collect: () => { state.collections++; heap = { ...heap, total: heap.used } }
  })
  const change = (): void => { for (const l of listeners) l() }
  const grow = (): void => { heap = { ...heap, total: heap.used + 60 * MiB } }
  return { clock, memory, state, change, grow, timers: () => clock.pending }
}

describe('IdleMemory', () => {
  it('collects once after the quiet period, and not again while the node stays quiet', () => {
    const { clock, memory, state, timers } = quietNode()
    memory.start()
    clock.advance(9_999)
    expect(state.collections).toBe(0)
    clock.advance(1)
    expect(state.collections).toBe(1)
    expect(timers()).toBe(0) // a quiet node is not woken again
    clock.advance(60_000)
    expect(state.collections).toBe(1)
    memory.stop()
  })

  it('waits for a full quiet period after the last change, with one timer however many changes come', () => {
    const { clock, memory, state, change, timers } = quietNode()
    memory.start()
    for (let i = 0; i < 9; i++) {
      clock.advance(1_000)
      change()
      expect(timers()).toBe(1)
    }
    clock.advance(9_999)
    expect(state.collections).toBe(0)
    clock.advance(1)
    expect(state.collections).toBe(1)
    memory.stop()
  })

  it('never collects while a job runs; the quiet period after its end does', () => {
    const { clock, memory, state, change } = quietNode({ busy: true })
    memory.start()
    clock.advance(60_000)
    expect(state.collections).toBe(0)
    state.busy = false
    change() // the job's end record
    clock.advance(10_000)
    expect(state.collections).toBe(1)
    memory.stop()
  })

  it('does not collect a heap with little to give back', () => {
    const { clock, memory, state } = quietNode({ spare: 8 * MiB })
    memory.start()
    clock.advance(60_000)
    expect(state.collections).toBe(0)
    memory.stop()
  })

  it('collects again after activity grew the heap once more', () => {
    const { clock, memory, state, change, grow } = quietNode()
    memory.start()
    clock.advance(10_000)
    grow()
    change()
    clock.advance(10_000)
    expect(state.collections).toBe(2)
    memory.stop()
  })

  it('stops listening and cancels its timer when stopped', () => {
    const { clock, memory, state, change, timers } = quietNode()
    memory.start()
    memory.stop()
    expect(timers()).toBe(0)
    change()
    clock.advance(60_000)
    expect(state.collections).toBe(0)
  })
})
