/**
 * A submit request checked field by field and turned into a job draft (the spec without the id
 * and the order the ledger gives it).
 */
import { homedir } from 'node:os'
import { isAbsolute } from 'node:path'
import { InvalidJobError } from '../errors.js'
import { parseDuration } from '../duration.js'
import { parseMemory } from '../size.js'
import { MAX_ENV_BYTES, envBytes } from '../env-size.js'
import type { JobId, JobRunOptions, JobSpec, SubmitRequest } from '../types.js'
import { ArraySpecError, checkRange, parseArraySpec } from '../array-task.js'
import type { ArrayRange } from '../array-task.js'

export const DEFAULT_TTR_MS = 30_000
/** Largest serialized job spec accepted: the ledger is replicated to every node. */
export const MAX_SPEC_BYTES = 256 * 1024

/** A validated submit, before the ledger gives it an id. */
export type JobDraft = Omit<JobSpec, 'id' | 'n' | 'seq' | 'submitter' | 'submittedAt'>

function list (value: unknown, field: string): string[] {
  if (value == null) return []
  const items = typeof value === 'string' ? value.split(',') : value
  if (!Array.isArray(items) || !items.every(s => typeof s === 'string')) {
    throw new InvalidJobError(`${field} must be a list of strings, got ${JSON.stringify(value)}`)
  }
  return items.map(s => s.trim()).filter(s => s !== '')
}

function integer (value: unknown, field: string, min: number, fallback: number): number {
  if (value == null) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidJobError(`${field} must be an integer >= ${min}, got ${JSON.stringify(value)}`)
  }
  return value
}

function optionalString (value: unknown, field: string): string | undefined {
  if (value == null) return undefined
  if (typeof value !== 'string' || value === '') throw new InvalidJobError(`${field} must be a non-empty string`)
  return value
}

function optionalBool (value: unknown, field: string): true | undefined {
  if (value == null || value === false) return undefined
  if (value !== true) throw new InvalidJobError(`${field} must be true or false, got ${JSON.stringify(value)}`)
  return true
}

/** A parser's UsageError as the node's InvalidJobError. */
function parsed<T> (value: T | undefined, parse: (value: T) => number): number | undefined {
  if (value == null) return undefined
  try {
    return parse(value)
  } catch (err) {
    throw new InvalidJobError((err as Error).message)
  }
}

const duration = (value: string | number | undefined, field: string): number | undefined =>
  parsed(value, v => parseDuration(v, field))

/** `begin`: wall-clock ms, or an ISO 8601 date-time (clients resolve `HH:MM` and `now+1h` first). */
function instant (value: string | number | undefined, field: string): number | undefined {
  if (value == null) return undefined
  const ms = typeof value === 'number' ? value : Date.parse(value)
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new InvalidJobError(`${field} must be an ISO 8601 date-time or wall-clock milliseconds, got ${JSON.stringify(value)}`)
  }
  return ms
}

/** The later of `delay` from now and `begin`, if that is in the future. */
function notBefore (req: SubmitRequest, now: number): number | undefined {
  const start = Math.max(now + (duration(req.delay, 'delay') ?? 0), instant(req.begin, 'begin') ?? 0)
  return start > now ? start : undefined
}

function checkEnv (env: unknown): Record<string, string> {
  if (typeof env !== 'object' || env === null || Array.isArray(env) || Object.values(env).some(v => typeof v !== 'string')) {
    throw new InvalidJobError('env must be an object of strings')
  }
  const vars = env as Record<string, string>
  for (const [name, value] of Object.entries(vars)) {
    refuseNul(name, `the name of env ${JSON.stringify(name)}`)
    refuseNul(value, `env ${name}`)
  }
  if (envBytes(vars) > MAX_ENV_BYTES) {
    throw new InvalidJobError(`env is ${Math.ceil(envBytes(vars) / 1024)} KiB: at most ${MAX_ENV_BYTES / 1024} KiB`)
  }
  return vars
}

/** The fields of the run options (one missing here does not compile). */
const RUN_OPTION_FIELDS = Object.keys({
  onSuccess: true, onFailure: true, onExit: true, tmpdir: true, keepTmpdir: true, cleanup: true, memBytes: true
} satisfies Record<keyof Required<JobRunOptions>, true>) as Array<keyof JobRunOptions>

/** The run options of a spec or view, and nothing else. */
export function runOptionsOf (options: JobRunOptions): JobRunOptions {
  return Object.fromEntries(RUN_OPTION_FIELDS.map(field => [field, options[field]]))
}

/** Hooks, private directory and memory limit: checked, and the directory flags checked together. */
function runOptions (req: SubmitRequest): JobRunOptions {
  const options: JobRunOptions = {
    onSuccess: optionalString(req.onSuccess, 'onSuccess'),
    onFailure: optionalString(req.onFailure, 'onFailure'),
    onExit: optionalString(req.onExit, 'onExit'),
    tmpdir: optionalBool(req.tmpdir, 'tmpdir'),
    keepTmpdir: optionalBool(req.keepTmpdir, 'keepTmpdir'),
    cleanup: optionalBool(req.cleanup, 'cleanup'),
    memBytes: parsed(req.mem, v => parseMemory(v))
  }
  if (options.tmpdir !== true && (options.keepTmpdir === true || options.cleanup === true)) {
    const field = options.cleanup === true ? 'cleanup' : 'keepTmpdir'
    throw new InvalidJobError(`${field} needs tmpdir: it is about the job's private directory`)
  }
  if (options.keepTmpdir === true && options.cleanup === true) {
    throw new InvalidJobError('cleanup and keepTmpdir contradict each other: choose one')
  }
  return options
}

/**
 * The OS takes arguments, environment variables and paths as C strings, which a NUL byte ends:
 * a job with one could never start.
 */
function refuseNul (value: string, field: string): void {
  if (value.includes('\0')) {
    throw new InvalidJobError(`${field} contains a NUL byte: a command, its environment and its cwd cannot hold one`)
  }
}

/**
 * Checks a submit request field by field and turns it into a job draft; throws InvalidJobError.
 * A request without `cwd` runs in `defaultCwd`: the node's user's home directory.
 */
export function draftJob (req: SubmitRequest, now: number, defaultCwd = homedir()): JobDraft {
  if (req == null || typeof req !== 'object') throw new InvalidJobError('a job must be a JSON object')
  if (!Array.isArray(req.cmd) || req.cmd.length === 0 || !req.cmd.every(a => typeof a === 'string') || req.cmd[0] === '') {
    throw new InvalidJobError('cmd must be a non-empty array of strings, e.g. ["echo", "hi"]')
  }
  req.cmd.forEach((arg, i) => { refuseNul(arg, `cmd[${i}]`) })
  const cwd = req.cwd ?? defaultCwd
  if (typeof cwd !== 'string' || !isAbsolute(cwd)) {
    throw new InvalidJobError('cwd must be an absolute path (or left out: the home directory of the node\'s user)')
  }
  refuseNul(cwd, 'cwd')
  const draft: JobDraft = {
    name: optionalString(req.name, 'name'),
    cmd: req.cmd,
    cwd,
    env: checkEnv(req.env ?? {}),
    group: optionalString(req.group, 'group'),
    after: list(req.after, 'after') as JobId[],
    afterGroup: list(req.afterGroup, 'afterGroup'),
    ...anyDependencies(req),
    pri: integer(req.pri, 'pri', Number.MIN_SAFE_INTEGER, 0),
    retries: integer(req.retries, 'retries', 0, 0),
    ttrMs: duration(req.ttr, 'ttr') ?? DEFAULT_TTR_MS,
    timeoutMs: duration(req.timeout, 'timeout'),
    notBefore: notBefore(req, now),
    tags: list(req.tag, 'tag'),
    cores: integer(req.cores, 'cores', 1, 1),
    out: optionalString(req.out, 'out'),
    ...runOptions(req),
    key: optionalString(req.id, 'id'),
    allowMissing: req.allowMissing === true ? true : undefined,
    ...arrayOptions(req)
  }
  if (draft.ttrMs < 1000) throw new InvalidJobError('ttr must be at least 1s')
  if (JSON.stringify(draft).length > MAX_SPEC_BYTES) throw new InvalidJobError(`job spec is larger than ${MAX_SPEC_BYTES / 1024} KiB`)
  return draft
}

/** `array` (a range, or Slurm's `A-B:STEP%LIMIT`) and `arrayLimit`, checked together. */
function arrayOptions (req: SubmitRequest): Pick<JobDraft, 'array' | 'arrayLimit'> {
  if (req.array == null) {
    if (req.arrayLimit != null) throw new InvalidJobError('arrayLimit needs array: it caps the tasks of an array')
    return {}
  }
  try {
    const { range, limit } = typeof req.array === 'string'
      ? parseArraySpec(req.array)
      : { range: checkRange(typeof req.array === 'object' ? req.array : ({} as ArrayRange)), limit: undefined }
    if (req.expand != null) throw new InvalidJobError('expand and array do not go together: an array runs one command per index')
    return { array: range, arrayLimit: integer(req.arrayLimit, 'arrayLimit', 1, limit ?? 0) || undefined }
  } catch (err) {
    if (err instanceof ArraySpecError) throw new InvalidJobError(err.message)
    throw err
  }
}

/** `afterAny` and `afterGroupAny`, left out of the spec when empty (as older specs have them). */
function anyDependencies (req: SubmitRequest): Pick<JobDraft, 'afterAny' | 'afterGroupAny'> {
  const afterAny = list(req.afterAny, 'afterAny') as JobId[]
  const afterGroupAny = list(req.afterGroupAny, 'afterGroupAny')
  return { afterAny: afterAny.length > 0 ? afterAny : undefined, afterGroupAny: afterGroupAny.length > 0 ? afterGroupAny : undefined }
}
