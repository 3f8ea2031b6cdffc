/**
 * Values as users type them, in flags and in `--batch` fields: integers and comma lists.
 */
import { UsageError } from './errors.js'

export function parseInteger (value: string | number, what: string, min = Number.MIN_SAFE_INTEGER): number {
  const n = typeof value === 'number' ? value : /^[+-]?\d+$/.test(value.trim()) ? Number(value) : NaN
  if (!Number.isSafeInteger(n)) throw new UsageError(`bad ${what}: '${value}' (expected an integer)`)
  if (n < min) throw new UsageError(`bad ${what}: ${n} (must be at least ${min})`)
  return n
}

/** Splits `a,b` lists (of repeated flags too), dropping empty items. */
export function splitList (values: string[]): string[] {
  return values.flatMap(v => v.split(',')).map(v => v.trim()).filter(v => v !== '')
}
