import type { JobId, JobSpec } from '../types.js'
import { arrayLength, inArray, taskId } from '../array-task.js'
import type { Derived } from '../crdt/derive.js'

/**
 * The tasks of an array that no fact has touched yet: no attempt, no control. They all derive the
 * same state from the array's spec, so they cost one record, not one entry each. A task leaves
 * this set ("is materialized") when a fact about it arrives or the scheduler takes it to run, and
 * never comes back. Untouched tasks are never in a terminal state: when their common state would
 * be one (a dependency failed), the job table materializes them all, so that each is reported.
 */
export class UntouchedTasks {
  readonly array: JobSpec
  /** The state they all derive; a removed placeholder until the first derivation. */
  derived: Derived = { state: 'pending', removed: true, lamport: 0, epoch: 0 }
  #count: number
  readonly #touched = new Set<number>()
  /** Position (in steps from the first index) before which every task has been touched. */
  #cursor = 0

  constructor (array: JobSpec) {
    if (array.array == null) throw new Error(`${array.id} is no array`)
    this.array = array
    this.#count = arrayLength(array.array)
  }

  get count (): number {
    return this.#count
  }

  /** Whether the task of that index is one of these. */
  has (index: number): boolean {
    return inArray(this.range, index) && !this.#touched.has(index)
  }

  /** The untouched task that runs first (the lowest index), if any. */
  next (): number | undefined {
    const { first, step } = this.range
    while (this.#cursor < arrayLength(this.range) && this.#touched.has(first + this.#cursor * step)) this.#cursor++
    return this.#count === 0 ? undefined : first + this.#cursor * step
  }

  /** Takes a task out of the set (the caller gives it an entry of its own). */
  touch (index: number): void {
    if (!this.has(index)) return
    this.#touched.add(index)
    this.#count--
  }

  /** Every index still untouched, in order, from the first (`next`): cheap to start however many were touched before it. */
  * indices (): Generator<number> {
    const first = this.next()
    if (first == null) return
    const { last, step } = this.range
    for (let i = first; i <= last; i += step) if (!this.#touched.has(i)) yield i
  }

  /** The job spec of one task: the array's, with the task's id and index and without the idempotency key, which names the array. */
  spec (index: number): JobSpec {
    const { key: _key, ...common } = this.array
    return { ...common, id: taskId(this.array.id, index), arrayId: this.array.id as JobId, arrayIndex: index }
  }

  private get range (): NonNullable<JobSpec['array']> {
    return this.array.array as NonNullable<JobSpec['array']>
  }
}
