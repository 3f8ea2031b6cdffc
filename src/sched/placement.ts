/**
 * Memory as a placement resource: a node runs a job with `--mem` only if that much memory is free
 * there, and says so when no node has enough.
 */
import { freemem, totalmem } from 'node:os'
import { formatMemory } from '../size.js'
import type { JobSpec } from '../types.js'

/** How often a job that waits for memory is looked at again: the OS's free memory changes unseen. */
export const MEMORY_RECHECK_MS = 5000

export interface MemorySource {
  freemem: () => number
  totalmem: () => number
}

/**
 * What a node has for jobs' `--mem`: with `meshq node --mem SIZE`, that budget less the `--mem` of
 * the jobs it runs; otherwise the memory the OS has available, and never more than its total less
 * the `--mem` of the jobs it runs (a job that has just started uses little, but may grow to its limit).
 */
export class NodeMemory {
  constructor (private readonly budgetBytes?: number, private readonly os: MemorySource = { freemem, totalmem }) {}

  free (reservedBytes: number): number {
    const free = this.budgetBytes !== undefined
      ? this.budgetBytes - reservedBytes
      : Math.min(this.os.freemem(), this.os.totalmem() - reservedBytes)
    return Math.max(0, free)
  }
}

/** The `--mem` of the runs whose process has not ended. */
export function reservedMemory (runs: Iterable<{ spec: JobSpec, slotFreed?: boolean }>): number {
  let bytes = 0
  for (const run of runs) if (run.slotFreed !== true) bytes += run.spec.memBytes ?? 0
  return bytes
}

/**
 * Whether a job fits what a node has free. A job without `--mem` always does, and `free` (which
 * may read /proc/meminfo) is asked only for one with it; undefined means memory is not tracked.
 */
export function fitsMemory (spec: JobSpec, free: () => number | undefined): boolean {
  if (spec.memBytes === undefined) return true
  const bytes = free()
  return bytes === undefined || spec.memBytes <= bytes
}

/**
 * Why a ready job is not running, when memory is why: none of the nodes able to run it (live, not
 * draining) has its `--mem` free. Undefined when one has, or when one does not say (protocol 2.0).
 */
export function memoryReason (spec: JobSpec, nodes: Array<{ draining: boolean, memFree?: number }>): string | undefined {
  if (spec.memBytes === undefined) return undefined
  const free = nodes.filter(n => !n.draining).map(n => n.memFree)
  if (free.length === 0 || free.some(bytes => bytes === undefined || bytes >= (spec.memBytes as number))) return undefined
  const most = formatMemory(Math.max(...free as number[]))
  return `needs ${formatMemory(spec.memBytes)} of memory; no live node has that much free (the most is ${most})`
}
