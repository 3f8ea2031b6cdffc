import { describe, expect, it } from 'vitest'
import { NodeMemory, fitsMemory, memoryReason, reservedMemory } from '../src/sched/placement.js'
import type { JobSpec } from '../src/types.js'

const GiB = 2 ** 30
const job = (memBytes?: number): JobSpec => ({ memBytes } as unknown as JobSpec)

describe('memory placement', () => {
  it('a budget (node --mem) less the --mem of the jobs it runs; never below 0', () => {
    const memory = new NodeMemory(4 * GiB, { freemem: () => 0, totalmem: () => 0 })
    expect(memory.free(0)).toBe(4 * GiB)
    expect(memory.free(3 * GiB)).toBe(GiB)
    expect(memory.free(5 * GiB)).toBe(0)
  })

  it('without a budget: what the OS has available, at most its total less the --mem of the jobs it runs', () => {
    const memory = new NodeMemory(undefined, { freemem: () => 6 * GiB, totalmem: () => 8 * GiB })
    expect(memory.free(0)).toBe(6 * GiB)
    expect(memory.free(GiB)).toBe(6 * GiB) // a job that has not grown yet leaves the OS's figure
    expect(memory.free(5 * GiB)).toBe(3 * GiB) // but may grow to its limit
  })

  it('counts the --mem of runs whose process has not ended', () => {
    expect(reservedMemory([{ spec: job(GiB) }, { spec: job() }, { spec: job(2 * GiB), slotFreed: true }, { spec: job(GiB) }])).toBe(2 * GiB)
  })

  it('a job without --mem always fits, without asking; one with it fits what is free', () => {
    expect(fitsMemory(job(), () => { throw new Error('not asked') })).toBe(true)
    expect(fitsMemory(job(GiB), () => GiB)).toBe(true)
    expect(fitsMemory(job(GiB + 1), () => GiB)).toBe(false)
    expect(fitsMemory(job(GiB), () => undefined)).toBe(true) // memory not tracked
  })

  it('says memory is why a job waits only when every node able to run it says it has too little', () => {
    const node = (memFree?: number, draining = false): { memFree?: number, draining: boolean } => ({ memFree, draining })
    expect(memoryReason(job(2 * GiB), [node(GiB), node(1.5 * GiB), node(8 * GiB, true)])).toBe('needs 2G of memory; no live node has that much free (the most is 1.5G)')
    expect(memoryReason(job(2 * GiB), [node(GiB), node(2 * GiB)])).toBeUndefined()
    expect(memoryReason(job(2 * GiB), [node(GiB), node()])).toBeUndefined() // a 2.0 node does not say
    expect(memoryReason(job(), [node(0)])).toBeUndefined()
  })
})
