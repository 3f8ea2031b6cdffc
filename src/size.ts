import { UsageError } from './errors.js'

const UNIT_BYTES: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }
const SIZE = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i
/** The smallest `--mem` accepted: below it, even a shell would be killed at once. */
export const MIN_MEMORY_BYTES = 2 ** 20

/** Parses a memory size: bytes as a number, or `512M`, `2G`, `1.5g`, `300MiB` (binary units). */
export function parseMemory (value: string | number, what = 'mem'): number {
  const match = typeof value === 'string' ? SIZE.exec(value.trim()) : null
  const bytes = typeof value === 'number' ? value : match == null ? NaN : Math.round(Number(match[1]) * UNIT_BYTES[match[2].toLowerCase()])
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`bad ${what}: ${JSON.stringify(value)} (expected a size such as 512M or 2G)`)
  if (bytes < MIN_MEMORY_BYTES) throw new UsageError(`bad ${what}: ${JSON.stringify(value)} is less than 1M`)
  return bytes
}

/** A memory size as `--mem` takes it: `512M`, `2G`, `1.5G`. */
export function formatMemory (bytes: number): string {
  const units: Array<[string, number]> = [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 2 ** 10]]
  for (const [unit, size] of units) {
    if (bytes >= size) return `${Number((bytes / size).toFixed(1))}${unit}`
  }
  return `${bytes}B`
}
