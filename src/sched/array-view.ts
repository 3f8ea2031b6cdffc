import type { JobId, JobSpec, JobView } from '../types.js'
import { arrayIndices, arrayLength, taskId } from '../array-task.js'
import { arrayState } from './array-book.js'
import type { JobTable } from './table.js'
import { toJobView } from '../jobs/view.js'

/**
 * An array's record as clients see it: its spec as a job's, its state that of the whole array
 * (see arrayState), and `array` with its range and its tasks' states.
 */
export function arrayView (table: JobTable, id: string, readyReason: (spec: JobSpec) => string): JobView | undefined {
  const record = table.array(id)
  const spec = record?.spec
  const state = record == null ? undefined : arrayState(record)
  if (record == null || spec?.array == null || state == null) return undefined // no array, sealed away, or every task removed
  const view = toJobView({ facts: { spec, attempts: new Map() }, derived: { state } }, readyReason)
  const { first, last, step } = spec.array
  const array = { first, last, step, limit: spec.arrayLimit, tasks: arrayLength(spec.array), states: { ...record.states } }
  return { ...view, reason: undefined, array }
}

/** The ids of an array's tasks this replica knows (in memory or sealed), in index order; undefined for an id that is no array. */
export function arrayTaskIds (table: JobTable, id: string): JobId[] | undefined {
  const record = table.array(id)
  if (record == null) return undefined
  const known = (task: JobId): boolean => table.get(task) != null || table.sealedJob(task) != null
  if (record.spec?.array != null) return [...arrayIndices(record.spec.array)].map(i => taskId(id as JobId, i)).filter(known)
  const prefix = `${id}[`
  return [...table.sealedJobs()].map(([task]) => task).filter(task => task.startsWith(prefix))
}
