import { JobState } from '../types.js'
import type { JobId, JobSpec } from '../types.js'
import type { Clock } from '../clock.js'
import { deriveJob } from '../crdt/derive.js'
import type { DeriveContext, Derived } from '../crdt/derive.js'
import type { ArrayTasks } from './array-tasks.js'
import type { JobLinks } from './job-links.js'
import type { RunQueue } from './run-order.js'
import type { TableEntry } from './table-entry.js'

export type JobChangeListener = (id: JobId, entry: TableEntry) => void

export interface RederivationInit {
  clock: Clock
  entries: Map<JobId, TableEntry>
  arrays: ArrayTasks
  links: JobLinks
  queue: RunQueue
  ctx: DeriveContext
  /** Counts a job in (`sign` 1) or out (-1) of the group, segment and array counts. */
  count: (spec: Pick<JobSpec, 'id' | 'group'>, derived: Derived, sign: 1 | -1) => void
}

/**
 * Re-derives jobs and, when one changes state, what waits for it (dependants by job, by array and
 * by group), keeping counts, the run queue and wake-ups in step; then tells the listeners.
 */
export class Rederivation {
  private readonly listeners = new Set<JobChangeListener>()
  private readonly arrayListeners = new Set<(array: JobId) => void>()

  constructor (private readonly init: RederivationInit) {}

  onChange (listener: JobChangeListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  onUntouchedChange (listener: (array: JobId) => void): () => void {
    this.arrayListeners.add(listener)
    return () => this.arrayListeners.delete(listener)
  }

  /** Re-derives `ids` and what their changes reach; jobs in `announce` are reported even if unchanged. */
  run (ids: Set<JobId>, announce: Set<JobId> = new Set()): void {
    const { entries, arrays, ctx, clock } = this.init
    ctx.now = clock.now()
    const work = [...ids]
    const changed = new Set<JobId>()
    const changedArrays = new Set<JobId>()
    while (work.length > 0) {
      const id = work.pop() as JobId
      const entry = entries.get(id)
      if (entry == null) {
        const lazy = arrays.of(id)
        if (lazy != null && arrays.rederive(lazy, work)) changedArrays.add(id)
        continue
      }
      if (this.rederive(id, entry, work) || announce.has(id)) changed.add(id)
    }
    for (const id of changed) {
      const entry = entries.get(id) as TableEntry
      for (const listener of this.listeners) listener(id, entry)
    }
    for (const id of changedArrays) for (const listener of this.arrayListeners) listener(id)
  }

  /** Re-derives one job, adding to `work` the jobs to re-derive next; returns whether its state or its reason changed. */
  private rederive (id: JobId, entry: TableEntry, work: JobId[]): boolean {
    const { links, queue, ctx, count } = this.init
    const before = entry.derived
    const after = deriveJob(entry.facts, ctx)
    entry.derived = after
    const { spec } = entry.facts
    const stateChanged = before.state !== after.state || before.removed !== after.removed ||
      before.inheritedFailure !== after.inheritedFailure
    if (stateChanged) {
      count(spec, before, -1)
      count(spec, after, +1)
      for (const dep of links.dependantsOf(id)) work.push(dep)
      if (spec.arrayId != null) for (const dep of links.dependantsOf(spec.arrayId)) work.push(dep)
      if (spec.group != null) for (const dep of links.groupDependantsOf(spec.group)) work.push(dep)
      if (after.state === JobState.ready && !after.removed) queue.push(spec)
    }
    if (after.wakeAt != null && after.wakeAt !== before.wakeAt) queue.wakeAt(after.wakeAt, id)
    return stateChanged || before.reason !== after.reason
  }
}
