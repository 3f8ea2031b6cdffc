/**
 * Small generic helpers of the benchmark: polling with deadlines, timing, percentiles, /proc reads.
 */
import { readdir, readFile } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'

/** Monotonic milliseconds (fractional). */
export const now = () => performance.now()

/**
 * Polls `condition` until it returns a truthy value; throws a clear error at the deadline.
 * This is the only way the benchmark waits for anything: never a bare sleep. `what` (a string or a
 * function giving one) names the condition in the error.
 */
export async function waitFor (condition, { what = 'condition', timeout = 30_000, interval = 50 } = {}) {
  const deadline = Date.now() + timeout
  let last
  for (;;) {
    try {
      const value = await condition()
      if (value) return value
    } catch (err) {
      if (err?.fatal) throw err
      last = err
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${typeof what === 'function' ? what() : what}${last != null ? ` (last error: ${last.message})` : ''}`)
    }
    await new Promise(resolve => setTimeout(resolve, interval))
  }
}

/** An error that makes `waitFor` give up at once (e.g. the node process died). */
export function fatal (message) {
  const err = new Error(message)
  err.fatal = true
  return err
}

/** Rejects if `promise` does not settle within `ms`. */
export async function withTimeout (promise, ms, what) {
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Nearest-rank percentile of an array of numbers (p in 0..100). */
export function percentile (values, p) {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[Math.min(rank, sorted.length) - 1]
}

export function mean (values) {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length
}

/** p50/p99/max/mean of latencies, rounded to 0.1 ms. */
export function latencySummary (values) {
  const r = v => Math.round(v * 10) / 10
  if (values.length === 0) return { n: 0, p50: NaN, p99: NaN, max: NaN, mean: NaN }
  return { n: values.length, p50: r(percentile(values, 50)), p99: r(percentile(values, 99)), max: r(Math.max(...values)), mean: r(mean(values)) }
}

/** user + system CPU of a process so far, in ms (/proc/PID/stat fields 14 and 15, in USER_HZ ticks). */
export async function cpuMs (pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1000 / 100
}

/** The pid of a node's spawner process (the child that starts its jobs), or undefined. */
export async function spawnerPid (nodePid) {
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== nodePid) continue
      if ((await readFile(`/proc/${name}/cmdline`, 'latin1')).includes('spawner/main.js')) return Number(name)
    } catch {
      // gone meanwhile
    }
  }
  return undefined
}

/** Resident set size of a process in MiB, from /proc (undefined if it is gone). */
export const rssMiB = async pid => await procStatusMiB(pid, 'VmRSS')

/** The peak resident set size of a process in MiB ("high water mark"). */
export const peakRssMiB = async pid => await procStatusMiB(pid, 'VmHWM')

async function procStatusMiB (pid, field) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status)
  return match == null ? undefined : Math.round(Number(match[1]) / 1024 * 10) / 10
}

/** Milliseconds between two ISO timestamps. */
export const isoDiff = (later, earlier) => Date.parse(later) - Date.parse(earlier)

export const round = (value, digits = 0) => {
  const f = 10 ** digits
  return Math.round(value * f) / f
}

export function chunks (items, size) {
  const out = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

const started = Date.now()

/** A progress line on stderr (the tables go to stdout). */
export function progress (message) {
  process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${message}\n`)
}

/** Counts of `key(item)` over items, as { key: count }. */
export function countBy (items, key) {
  const out = {}
  for (const item of items) {
    const k = key(item)
    out[k] = (out[k] ?? 0) + 1
  }
  return out
}
