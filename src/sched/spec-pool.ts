import type { JobSpec } from '../types.js'

/** Distinct strings kept for sharing; past this the pool starts again, so it never grows with history. */
const MAX_STRINGS = 10_000
/** Bytes of distinct environments (as JSON) kept for sharing, likewise. */
const MAX_ENV_BYTES = 4 * 1024 * 1024

const EMPTY_LIST: string[] = Object.freeze([]) as unknown as string[]

/**
 * Makes the specs of the job table share what many jobs hold alike: the cwd, group and submitter
 * strings, one environment object per distinct environment (a batch's jobs, or a user's `sub`s,
 * usually carry the same one), and one frozen empty list. A spec parsed from its fact has copies of
 * its own of all of these (docs/scale.md, "Memory per queued job"). Nothing may change a spec in
 * place: the shared parts are frozen, so a write would throw rather than change other jobs.
 */
export class SpecPool {
  private readonly strings = new Map<string, string>()
  private readonly envs = new Map<string, Record<string, string>>()
  private envBytes = 0

  /** The same spec, its shareable parts replaced by shared copies. */
  compact (spec: JobSpec): JobSpec {
    spec.cwd = this.string(spec.cwd)
    spec.submitter = this.string(spec.submitter)
    if (spec.group !== undefined) spec.group = this.string(spec.group)
    spec.env = this.env(spec.env)
    if (spec.after.length === 0) spec.after = EMPTY_LIST as JobSpec['after']
    if (spec.afterGroup.length === 0) spec.afterGroup = EMPTY_LIST
    if (spec.tags.length === 0) spec.tags = EMPTY_LIST
    return spec
  }

  private string<T> (text: T): T {
    if (typeof text !== 'string') return text // a malformed fact's field (validFact does not check them all)
    const shared = this.strings.get(text) as T | undefined
    if (shared !== undefined) return shared as T
    if (this.strings.size >= MAX_STRINGS) this.strings.clear()
    this.strings.set(text, text)
    return text
  }

  private env (env: Record<string, string>): Record<string, string> {
    const key = JSON.stringify(env)
    const shared = this.envs.get(key)
    if (shared !== undefined) return shared
    if (this.envBytes + key.length > MAX_ENV_BYTES) {
      this.envs.clear()
      this.envBytes = 0
    }
    this.envs.set(key, Object.freeze(env))
    this.envBytes += key.length
    return env
  }
}
