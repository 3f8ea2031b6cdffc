import { UsageError } from './errors.js'

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/

/** Parses `500ms`, `30s`, `5m`, `2h`, `1d` (or a number of milliseconds) into milliseconds. */
export function parseDuration (value: string | number, what = 'duration'): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value) && value >= 0) return value
    throw new UsageError(`bad ${what}: ${value} (expected a non-negative number of milliseconds)`)
  }
  const match = DURATION.exec(value.trim())
  if (match == null) throw new UsageError(`bad ${what}: '${value}' (expected e.g. 500ms, 30s, 5m, 2h)`)
  return Math.round(Number(match[1]) * UNIT_MS[match[2]])
}

/** The shortest readable form of a duration, for humans. */
export function formatDuration (ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`
  return `${Math.floor(ms / 3_600_000)}h${Math.round((ms % 3_600_000) / 60_000)}m`
}
