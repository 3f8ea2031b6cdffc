import { JobState } from '../types.js'
import type { JobId, JobSpec } from '../types.js'
import { arrayIndices, splitTaskId, taskId } from '../array-task.js'
import type { Derived } from '../crdt/derive.js'

/** What a replica knows of one job array: its spec (absent once its segment is sealed) and how many of its tasks are in each state. */
export interface ArrayRecord {
  spec?: JobSpec
  /** Tasks not removed. */
  total: number
  states: Record<JobState, number>
}

const noStates = (): Record<JobState, number> => ({ pending: 0, ready: 0, running: 0, done: 0, failed: 0, killed: 0 })

/**
 * The tasks of an array spec. Each is a job spec of its own: the array's with the task's id and
 * index, and without the idempotency key, which names the array.
 */
export function * tasksOf (array: JobSpec): Generator<JobSpec> {
  if (array.array == null) return
  const { key: _key, ...common } = array
  for (const index of arrayIndices(array.array)) {
    yield { ...common, id: taskId(array.id, index), arrayId: array.id, arrayIndex: index }
  }
}

/**
 * The state of a whole array, as `--after ARRAY` and `wait ARRAY` see it: ended only when every
 * task has ended (done if all succeeded, else failed, or killed if none failed); before that,
 * running if a task runs, ready if one is ready, else pending.
 */
export function arrayState ({ total, states }: ArrayRecord): JobState | undefined {
  if (total === 0) return undefined
  if (states.done + states.failed + states.killed === total) {
    return states.done === total ? JobState.done : states.failed > 0 ? JobState.failed : JobState.killed
  }
  return states.running > 0 ? JobState.running : states.ready > 0 ? JobState.ready : JobState.pending
}

/** The job arrays a replica knows, with their tasks counted by state as the job table derives them. */
export class ArrayBook {
  private readonly arrays = new Map<JobId, ArrayRecord>()

  get (id: JobId): ArrayRecord | undefined {
    return this.arrays.get(id)
  }

  entries (): IterableIterator<[JobId, ArrayRecord]> {
    return this.arrays.entries()
  }

  add (spec: JobSpec): void {
    this.record(spec.id).spec = spec
  }

  state (id: JobId): JobState | undefined {
    const record = this.arrays.get(id)
    return record == null ? undefined : arrayState(record)
  }

  /**
   * Counts a job's state in or out (`sign`) of its array, if it is a task. Returns how much it
   * weighs as a spec of its segment: 1 for a job, 0 for a task (its array's spec counts once).
   */
  count (id: JobId, derived: Pick<Derived, 'state' | 'removed'>, sign: 1 | -1): 0 | 1 {
    const task = splitTaskId(id)
    if (task == null) return 1
    const record = this.record(task.array)
    if (!derived.removed) {
      record.total += sign
      record.states[derived.state] += sign
    }
    return 0
  }

  private record (id: JobId): ArrayRecord {
    let record = this.arrays.get(id)
    if (record == null) this.arrays.set(id, record = { total: 0, states: noStates() })
    return record
  }
}
