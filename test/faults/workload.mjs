/**
 * The probe workload: batches of probe jobs submitted to random live nodes, and the record of
 * what was asked and what was acknowledged, for the checker.
 */
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

export const PROBE = fileURLToPath(new URL('./probe.sh', import.meta.url))

/** A small seeded PRNG (mulberry32): the same seed gives the same schedule of choices. */
export function seededRandom (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export class Workload {
  /**
   * @param {{ dir: string, random: () => number, ttr?: string, minMs?: number, maxMs?: number }} init
   * `dir` holds the shared log (`runs.log`) and the begin marks (`runs/`).
   */
  constructor ({ dir, random, ttr = '5s', minMs = 500, maxMs = 2500 }) {
    Object.assign(this, { dir, random, ttr, minMs, maxMs })
    this.log = join(dir, 'runs.log')
    this.runs = join(dir, 'runs')
    this.nextKey = 1
    /** key -> { node, at } of every job asked for. */
    this.attempted = new Map()
    /** key -> job id, for submits that were acknowledged. */
    this.acknowledged = new Map()
    /** Submits that failed, by exit code: the jobs may or may not exist. */
    this.refused = new Map()
    this.stopped = true
  }

  /** One probe job as a `sub --batch` line; `durationMs` defaults to a random length. */
  job (key, durationMs = this.minMs + Math.floor(this.random() * (this.maxMs - this.minMs)), extra = {}) {
    return { cmd: ['/bin/sh', PROBE, key, this.log, this.runs, String(durationMs)], cwd: this.dir, ttr: this.ttr, ...extra }
  }

  /** Whether a job (as `ls --json` shows it) is one of the probes. */
  isProbe (job) { return job.cmd?.[1] === PROBE }

  /** Submits `count` probes to `node` in one batch; returns their ids ([] if refused). */
  async submit (node, count = 1, { durationMs, extra } = {}) {
    const keys = Array.from({ length: count }, () => `k${this.nextKey++}`)
    const at = Date.now()
    for (const key of keys) this.attempted.set(key, { node: node.name, at })
    const input = keys.map(key => JSON.stringify(this.job(key, durationMs, extra))).join('\n')
    const result = await node.cli(['sub', '--batch'], { input, timeout: 60_000 })
    if (result.code !== 0) {
      this.refused.set(result.code, (this.refused.get(result.code) ?? 0) + count)
      this.lastRefusal = (result.stderr + result.stdout).trim()
      return []
    }
    const ids = result.stdout.trim().split('\n')
    keys.forEach((key, k) => this.acknowledged.set(key, ids[k]))
    return ids
  }

  /**
   * Keeps submitting batches to random running nodes (chosen by `pick`) until `stop()`:
   * `rate` jobs per second on average, in batches of 1..`batch`.
   */
  start ({ nodes, rate = 4, batch = 4, pick = () => nodes.filter(n => n.running) }) {
    this.stopped = false
    this.loop = (async () => {
      while (!this.stopped) {
        const candidates = pick()
        const count = 1 + Math.floor(this.random() * batch)
        const pause = (count / rate) * 1000
        if (candidates.length > 0) {
          const node = candidates[Math.floor(this.random() * candidates.length)]
          await this.submit(node, count)
        }
        await new Promise(resolve => setTimeout(resolve, pause * (0.5 + this.random())))
      }
    })()
  }

  async stop () {
    this.stopped = true
    await this.loop
  }
}
