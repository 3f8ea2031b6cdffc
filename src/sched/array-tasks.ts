import { JobState, isTerminal } from '../types.js'
import type { JobId, JobSpec } from '../types.js'
import { deriveJob } from '../crdt/derive.js'
import type { DeriveContext, Derived } from '../crdt/derive.js'
import { segmentOf } from '../crdt/facts.js'
import { taskId } from '../array-task.js'
import type { ArrayBook } from './array-book.js'
import type { JobLinks } from './job-links.js'
import type { RunQueue } from './run-order.js'
import { UntouchedTasks } from './untouched-tasks.js'

export interface ArrayTasksInit {
  book: ArrayBook
  links: JobLinks
  queue: RunQueue
  ctx: DeriveContext
  /** Counts `weight` jobs in a state in (`sign` 1) or out (-1) of the group, segment and array counts. */
  count: (spec: Pick<JobSpec, 'id' | 'group'>, derived: Derived, sign: 1 | -1, weight: number) => void
  /** Gives a job an entry of its own in the job table. */
  addSpec: (spec: JobSpec, touched: Set<JobId>) => void
  /** Re-derives jobs that have entries. */
  recompute: (ids: Set<JobId>) => void
}

/**
 * How many of an array's untouched tasks one walk of the run queue is offered at most: more than
 * the claims a mesh has in flight at once (tasks claimed elsewhere are passed over) plus the
 * scheduler's lookahead, and few enough that a walk stays short however large the array.
 */
export const OFFERED_PER_WALK = 256

export type Visit = (spec: JobSpec) => boolean | 'stop'

/**
 * The job table's side of job arrays: each array's untouched tasks (one record per array, see
 * UntouchedTasks), derived, counted and offered to the scheduler as a whole, until a task is
 * touched and gets an entry of its own.
 */
export class ArrayTasks {
  private readonly untouched = new Map<JobId, UntouchedTasks>()

  constructor (private readonly init: ArrayTasksInit) {}

  of (array: JobId): UntouchedTasks | undefined {
    return this.untouched.get(array)
  }

  all (): Iterable<UntouchedTasks> {
    return this.untouched.values()
  }

  /** The arrays of a segment whose spec is in memory. */
  inSegment (seg: string): JobId[] {
    return [...this.untouched.keys()].filter(id => segmentOf(id) === seg)
  }

  /** A job, or the untouched tasks of an array: what a group member stands for. */
  * expand (id: JobId): Iterable<JobId> {
    const lazy = this.untouched.get(id)
    if (lazy == null) yield id
    else for (const index of lazy.indices()) yield taskId(id, index)
  }

  /** Takes in an array's spec: all its tasks untouched, counted as removed until their first derivation. */
  add (spec: JobSpec): UntouchedTasks {
    this.init.book.add(spec)
    const lazy = new UntouchedTasks(spec)
    this.untouched.set(spec.id, lazy)
    this.countUntouched(lazy, lazy.derived, +1)
    return lazy
  }

  /** Drops a sealed array's spec and untouched tasks (its record stays counted in the book). */
  forget (id: JobId): void {
    this.untouched.delete(id)
    this.init.book.forget(id)
  }

  /** Gives an untouched task an entry of its own (it leaves the array's untouched tasks for good). */
  materialize (lazy: UntouchedTasks, index: number, touched: Set<JobId>, spec = lazy.spec(index)): void {
    this.countUntouched(lazy, lazy.derived, -1, 1)
    lazy.touch(index)
    this.init.addSpec(spec, touched)
  }

  /**
   * An array's untouched tasks, offered to `visit` in order until it takes one or stops, at most
   * OFFERED_PER_WALK of them: tasks claimed elsewhere stay untouched here until their attempt
   * arrives, and the scheduler looks past them. A task taken gets an entry of its own.
   */
  offer (lazy: UntouchedTasks, spec: JobSpec, visit: Visit): boolean | 'stop' | 'stale' {
    if (lazy.array !== spec || lazy.derived.state !== JobState.ready || lazy.derived.removed || lazy.count === 0) return 'stale'
    let offered = 0
    for (const index of lazy.indices()) {
      const task = lazy.spec(index)
      const verdict = visit(task)
      if (verdict === true) {
        this.take(lazy, index, task, spec)
        return true
      }
      if (verdict === 'stop') return 'stop'
      if (++offered === OFFERED_PER_WALK) break
    }
    return false
  }

  private take (lazy: UntouchedTasks, index: number, task: JobSpec, spec: JobSpec): void {
    const touched = new Set<JobId>()
    this.materialize(lazy, index, touched, task)
    this.init.recompute(touched)
    if (lazy.count > 0) this.init.queue.push(spec)
  }

  /**
   * Re-derives an array's untouched tasks, all at once, adding to `work` the jobs to re-derive next.
   * A terminal state (a dependency failed) is never theirs: they all get entries then, so that each
   * task's end is derived and reported. Returns whether their state or its reason changed.
   */
  rederive (lazy: UntouchedTasks, work: JobId[]): boolean {
    const { links, queue, ctx } = this.init
    const before = lazy.derived
    const after = deriveJob({ spec: lazy.array, attempts: new Map(), controls: new Map() }, ctx)
    if (isTerminal(after.state)) {
      const touched = new Set<JobId>()
      for (const index of [...lazy.indices()]) this.materialize(lazy, index, touched)
      work.push(...touched)
      return false
    }
    lazy.derived = after
    if (before.state !== after.state || before.removed !== after.removed) {
      this.countUntouched(lazy, before, -1)
      this.countUntouched(lazy, after, +1)
      const { id, group } = lazy.array
      for (const dep of links.dependantsOf(id)) work.push(dep)
      if (group != null) for (const dep of links.groupDependantsOf(group)) work.push(dep)
      if (after.state === JobState.ready && lazy.count > 0) queue.push(lazy.array)
    }
    if (after.wakeAt != null && after.wakeAt !== before.wakeAt) queue.wakeAt(after.wakeAt, lazy.array.id)
    return before.state !== after.state || before.removed !== after.removed || before.reason !== after.reason
  }

  /** Untouched tasks in the group, array and segment counts: `weight` of them (all by default). */
  private countUntouched (lazy: UntouchedTasks, derived: Derived, sign: 1 | -1, weight = lazy.count): void {
    const { id, group, array } = lazy.array
    if (weight > 0 && array != null) this.init.count({ id: taskId(id, array.first), group }, derived, sign, weight)
  }
}
