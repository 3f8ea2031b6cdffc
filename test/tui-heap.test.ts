/** The dashboard's bounds on V8's heap (src/tui/heap.ts), in this test process's own heap. */
import v8 from 'node:v8'
import { describe, expect, it } from 'vitest'
import { boundHeap } from '../src/tui/heap.js'

const MiB = 2 ** 20

function space (name: string, field: 'space_size' | 'space_used_size'): number {
  return v8.getHeapSpaceStatistics().find(s => s.space_name === name)?.[field] ?? 0
}

/**
 * Allocates `rounds` batches of objects, each kept for a few rounds (long enough to be promoted to
 * the old generation) then dropped; returns the largest young and old generation seen.
 */
async function churn (rounds: number): Promise<{ young: number, old: number }> {
  const kept: object[][] = []
  let young = 0
  let old = 0
  for (let round = 0; round < rounds; round++) {
    kept.push(Array.from({ length: 20_000 }, (_, i) => ({ id: `job-${round}-${i}`, n: [i] })))
    if (kept.length > 4) kept.shift()
    await new Promise(resolve => setImmediate(resolve)) // lets the bound's observer and collections run
    young = Math.max(young, space('new_space', 'space_size'))
    old = Math.max(old, space('old_space', 'space_used_size'))
  }
  return { young, old }
}

describe('heap bounds', () => {
  it('keep the young generation at its bound and collect the old one when it grows by the slack', async () => {
    const oldBefore = space('old_space', 'space_used_size')
    const stop = boundHeap({ youngMax: 8 * MiB, oldSlack: 8 * MiB })
    try {
      const { young, old } = await churn(300)
      expect(young).toBeLessThanOrEqual(8 * MiB)
      // what is kept (4 batches, ~10 MiB) plus the slack, with room for one collection's lag
      expect(old - oldBefore).toBeLessThan(40 * MiB)
    } finally {
      stop()
    }
  })
})
