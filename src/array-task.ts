/**
 * Job arrays (`meshq sub --array 1-1000[:STEP][%LIMIT]`): one spec in the ledger, one task per
 * index. A task's id is the array's id with the index in brackets: `abc123-4[17]`.
 * Dependency-free: the CLI, the ledger's fact checks and the scheduler all use it.
 */

/** The indices of an array: first, first + step, ... up to last. */
export interface ArrayRange {
  first: number
  last: number
  step: number
}

/**
 * The most tasks one array may have. Every node keeps a small record per task in memory
 * (docs/scale.md), so the cap is what a node holds comfortably, not what the id format allows.
 */
export const MAX_ARRAY_TASKS = 1_000_000
/** Indices are non-negative integers below this (Slurm's own cap is far lower). */
export const MAX_ARRAY_INDEX = 1_000_000_000

/** The error of a malformed `--array`: the caller turns it into a usage error or an invalid job. */
export class ArraySpecError extends Error {
  name = 'ArraySpecError'
}

export const arrayLength = ({ first, last, step }: ArrayRange): number => Math.floor((last - first) / step) + 1

export function * arrayIndices ({ first, last, step }: ArrayRange): Generator<number> {
  for (let i = first; i <= last; i += step) yield i
}

/** Whether `index` is one of the array's indices. */
export const inArray = ({ first, last, step }: ArrayRange, index: number): boolean =>
  index >= first && index <= last && (index - first) % step === 0

export const taskId = <T extends string>(array: T, index: number): T => `${array}[${index}]` as T

const TASK_ID = /^(.+)\[(0|[1-9][0-9]{0,9})\]$/

/** `abc123-4[17]` → the array's id and the index; undefined for an id that names no task. */
export function splitTaskId<T extends string> (id: T): { array: T, index: number } | undefined {
  const match = TASK_ID.exec(id)
  return match == null ? undefined : { array: match[1] as T, index: Number(match[2]) }
}

const RANGE = /^(\d+)(?:-(\d+))?(?::(\d+))?(?:%(\d+))?$/

/**
 * `--array` as Slurm writes it: `N`, `A-B`, `A-B:STEP`, each optionally with `%LIMIT` (tasks
 * running at once). Throws ArraySpecError with a message that names what is wrong.
 */
export function parseArraySpec (text: string): { range: ArrayRange, limit?: number } {
  const match = RANGE.exec(text.trim())
  if (match == null) {
    throw new ArraySpecError(`bad --array ${JSON.stringify(text)}: expected A-B, A-B:STEP or N, with an optional %LIMIT (e.g. 1-1000:2%10)`)
  }
  const [first, last, step, limit] = [match[1], match[2] ?? match[1], match[3] ?? '1', match[4]].map(n => n == null ? undefined : Number(n))
  const range = checkRange({ first: first as number, last: last as number, step: step as number })
  if (limit !== undefined && limit < 1) throw new ArraySpecError(`bad --array ${JSON.stringify(text)}: the %LIMIT must be at least 1`)
  return { range, limit }
}

/** A range whose bounds, step and size are acceptable; throws ArraySpecError. */
export function checkRange (range: ArrayRange): ArrayRange {
  const { first, last, step } = range
  const isIndex = (n: number): boolean => Number.isSafeInteger(n) && n >= 0 && n < MAX_ARRAY_INDEX
  const shown = `${first}-${last}:${step}`
  if (!isIndex(first) || !isIndex(last)) {
    throw new ArraySpecError(`bad array ${shown}: indices must be integers from 0 to ${MAX_ARRAY_INDEX - 1}`)
  }
  if (!Number.isSafeInteger(step) || step < 1) throw new ArraySpecError(`bad array ${shown}: the step must be an integer of at least 1`)
  if (last < first) throw new ArraySpecError(`bad array ${shown}: the range ends before it starts`)
  const tasks = arrayLength(range)
  if (tasks > MAX_ARRAY_TASKS) throw new ArraySpecError(`bad array ${shown}: ${tasks} tasks, at most ${MAX_ARRAY_TASKS} per array`)
  return { first, last, step }
}
