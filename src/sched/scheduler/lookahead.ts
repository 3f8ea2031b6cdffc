import type { JobSpec } from '../../types.js'

/** How many claimable jobs a node looks at per node that takes part in ranking (see Lookahead). */
export const LOOKAHEAD_PER_NODE = 2
/**
 * At most this many beyond the free slots: ranking a job costs a hash per node, and in a large mesh
 * the chance of finding a job a node ranks first for grows slowly with the width.
 */
export const MAX_LOOKAHEAD = 64

/** How many claimable jobs a node with `freeSlots` looks at, among `rankedNodes` nodes: the last free slot still chooses. */
export function lookaheadWidth (rankedNodes: number, freeSlots: number): number {
  return Math.min(LOOKAHEAD_PER_NODE * rankedNodes, MAX_LOOKAHEAD) + freeSlots - 1
}

interface Found {
  spec: JobSpec
  rank: number
  /** Position in run order among the jobs found. */
  order: number
}

/**
 * Which of the jobs it may claim now a node claims first. Every node walks the same run order: if
 * each claimed the first job it may claim, then under a backlog (where every rank delay has long
 * passed) every node with a free slot would claim the same job, and all but one would lose, each
 * loss costing every member a vote. Instead a node looks at the first `width` jobs it may claim
 * now, all of the priority of the first, and takes those it ranks best for, in run order among
 * equal ranks. Each job has one best-ranked node, so nodes that take from one backlog at once
 * mostly take different jobs; a job is overtaken by at most `width − 1` jobs of its own priority.
 * On one node every rank is 0 and the run order is kept exactly.
 */
export class Lookahead {
  private readonly found: Found[] = []
  private readonly ids = new Set<string>()

  constructor (private readonly width: number) {}

  /**
   * Offers the next job in run order that this node may claim now; returns whether to offer more.
   * A job offered again is ignored: the run queue can hold a job twice (queued again when a lease
   * on it lapsed), and picked twice it would be launched twice.
   */
  offer (spec: JobSpec, rank: number): boolean {
    const first = this.found[0]
    if (first != null && spec.pri !== first.spec.pri) return false // priority stays strict
    if (!this.ids.has(spec.id)) {
      this.ids.add(spec.id)
      this.found.push({ spec, rank, order: this.found.length })
    }
    return this.found.length < this.width
  }

  /** The jobs to claim, best rank first, as many as fit in `freeSlots` (each found job fits alone). */
  picks (freeSlots: number): JobSpec[] {
    const picked: JobSpec[] = []
    let free = freeSlots
    for (const { spec } of [...this.found].sort((a, b) => a.rank - b.rank || a.order - b.order)) {
      if (spec.cores > free) continue
      picked.push(spec)
      free -= spec.cores
    }
    return picked
  }
}
