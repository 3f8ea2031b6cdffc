/**
 * `--begin TIME` (Slurm's `--begin`): an absolute start time, resolved on the client into wall-clock ms.
 */
import { UsageError } from '../errors.js'
import { parseDuration } from '../duration.js'

const CLOCK_TIME = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/
const RELATIVE = /^now(?:\s*\+\s*(\S+))?$/i
/** ISO 8601 as Date.parse reads it reliably: a date, or a date-time with an optional zone. */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i

/**
 * Parses `2026-12-24T18:00`, `2026-12-24T18:00:00Z` (ISO 8601; without a zone: local time),
 * `HH:MM[:SS]` (the next such local time: today, or tomorrow if it has passed), `now` or
 * `now+DUR` (`now+1h`). Throws UsageError for anything else.
 */
export function parseBegin (value: string, now: number, what = '--begin'): number {
  const text = value.trim()
  const relative = RELATIVE.exec(text)
  if (relative != null) return now + (relative[1] === undefined ? 0 : parseDuration(relative[1], what))
  const clock = CLOCK_TIME.exec(text)
  if (clock != null) return nextClockTime(Number(clock[1]), Number(clock[2]), Number(clock[3] ?? 0), now, value, what)
  const ms = ISO_8601.test(text) ? Date.parse(text) : NaN
  if (Number.isNaN(ms)) throw bad(value, what)
  return ms
}

function nextClockTime (hours: number, minutes: number, seconds: number, now: number, value: string, what: string): number {
  if (hours > 23 || minutes > 59 || seconds > 59) throw bad(value, what)
  const at = new Date(now)
  at.setHours(hours, minutes, seconds, 0)
  if (at.getTime() <= now) at.setDate(at.getDate() + 1)
  return at.getTime()
}

const bad = (value: string, what: string): UsageError =>
  new UsageError(`bad ${what}: '${value}' (expected an ISO 8601 time such as 2026-12-24T18:00, HH:MM, or now+1h)`)
