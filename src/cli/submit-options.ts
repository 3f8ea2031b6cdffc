/**
 * The submit options of `meshq sub`: one table serves the flags and the `--batch` field names.
 */
import { resolve } from 'node:path'
import { UsageError } from '../errors.js'
import { parseDuration } from '../duration.js'
import { parseMemory } from '../size.js'
import type { SubmitRequest } from '../types.js'
import { parseInteger, splitList, type Args, type FlagSpec } from './args.js'
import { parseBegin } from './begin.js'
import { jobEnvironment, parseExport } from './environment.js'

type Kind = 'string' | 'list' | 'int' | 'duration' | 'time' | 'size' | 'dir' | 'env' | 'export' | 'bool'

/** A submit as the CLI takes it: `export` says what to copy from the submitter's environment into `env`. */
export interface ClientRequest extends SubmitRequest {
  export?: string[]
}

interface SubmitOption {
  /** The request field (and `--batch` field name). */
  field: Exclude<keyof ClientRequest, 'cmd'>
  /** The flag name; also accepted as a `--batch` field name. */
  flag: string
  kind: Kind
  arg?: string
  min?: number
  help: string
}

export const SUBMIT_OPTIONS: readonly SubmitOption[] = [
  { field: 'name', flag: 'name', kind: 'string', arg: 'S', help: 'a name for humans' },
  { field: 'group', flag: 'group', kind: 'string', arg: 'G', help: 'group, for reporting, waiting, killing and pausing' },
  { field: 'after', flag: 'after', kind: 'list', arg: 'ID[,ID]', help: 'run after these jobs succeed (repeatable)' },
  { field: 'afterGroup', flag: 'after-group', kind: 'list', arg: 'G', help: 'run after every job of group G has succeeded (repeatable)' },
  { field: 'afterAny', flag: 'after-any', kind: 'list', arg: 'ID[,ID]', help: 'run after these jobs end, whatever their outcome (repeatable)' },
  { field: 'afterGroupAny', flag: 'after-group-any', kind: 'list', arg: 'G', help: 'run after every job of group G has ended, whatever the outcome (repeatable)' },
  { field: 'pri', flag: 'pri', kind: 'int', arg: 'N', help: 'priority: higher runs first (default 0)' },
  { field: 'retries', flag: 'retries', kind: 'int', arg: 'N', min: 0, help: 'retries after a failure (default 0)' },
  { field: 'ttr', flag: 'ttr', kind: 'duration', arg: 'DUR', help: 'lease time-to-run (default 30s)' },
  { field: 'timeout', flag: 'timeout', kind: 'duration', arg: 'DUR', help: 'kill the job after it has run this long' },
  { field: 'delay', flag: 'delay', kind: 'duration', arg: 'DUR', help: 'do not start before this long from now' },
  { field: 'begin', flag: 'begin', kind: 'time', arg: 'TIME', help: 'do not start before TIME: 2026-12-24T18:00 (ISO 8601), HH:MM (next), now+1h' },
  { field: 'cwd', flag: 'cwd', kind: 'dir', arg: 'DIR', help: 'working directory (default: the current directory)' },
  { field: 'env', flag: 'env', kind: 'env', arg: 'K=V', help: 'set a variable; K alone copies it from this environment (repeatable)' },
  { field: 'export', flag: 'export', kind: 'export', arg: 'ALL|NONE|K1,K2', help: 'what to copy from this environment (default ALL but session and MESHQ_ variables; NONE with --batch)' },
  { field: 'tag', flag: 'tag', kind: 'list', arg: 'T', help: 'run only on nodes with tag T (repeatable)' },
  { field: 'cores', flag: 'cores', kind: 'int', arg: 'N', min: 1, help: 'slots the job takes (default 1)' },
  { field: 'out', flag: 'out', kind: 'string', arg: 'FILE', help: 'also write the output to FILE on the node that runs it' },
  { field: 'onSuccess', flag: 'on-success', kind: 'string', arg: 'CMD', help: 'run CMD (sh -c) where the job ran, after an attempt that succeeded' },
  { field: 'onFailure', flag: 'on-failure', kind: 'string', arg: 'CMD', help: 'run CMD (sh -c) where the job ran, after the attempt that made it fail for good' },
  { field: 'onExit', flag: 'on-exit', kind: 'string', arg: 'CMD', help: 'run CMD (sh -c) where the job ran, after every attempt' },
  { field: 'tmpdir', flag: 'tmpdir', kind: 'bool', help: 'run in a fresh private directory under the cwd, also TMPDIR; removed after success' },
  { field: 'keepTmpdir', flag: 'keep-tmpdir', kind: 'bool', help: 'with --tmpdir: never remove the private directory' },
  { field: 'cleanup', flag: 'cleanup', kind: 'bool', help: 'with --tmpdir: remove the private directory after a failure too' },
  { field: 'mem', flag: 'mem', kind: 'size', arg: 'SIZE', help: 'run it only on a node with SIZE of memory free, and kill it when its processes use more (RSS), e.g. 512M, 2G' },
  { field: 'expand', flag: 'expand', kind: 'string', arg: 'GEN', help: 'first run GEN (sh -c) as a job; each JSON line it prints (as for --batch) becomes a job this one waits for' },
  { field: 'id', flag: 'id', kind: 'string', arg: 'KEY', help: 'idempotency key: a second submit with KEY returns the first job' },
  { field: 'allowMissing', flag: 'allow-missing', kind: 'bool', help: 'accept --after ids that are not known (yet)' }
]

const REPEATABLE: ReadonlySet<Kind> = new Set(['list', 'env'])

export const SUBMIT_FLAGS: FlagSpec[] = SUBMIT_OPTIONS.map(o => ({
  name: o.flag, arg: o.arg, repeat: REPEATABLE.has(o.kind), help: o.help
}))

/** The client's side of a submit: relative paths, `--env K` and `--begin` resolve against it. */
export interface ClientSide {
  cwd: string
  env: NodeJS.ProcessEnv
  /** Wall-clock ms now. */
  now: number
  /** Copy `env` into every job, as `export` says (the CLI does; jobs printed by `--expand` do not). */
  copyEnv?: boolean
}

/** Checks and normalizes one option's value, given as flag strings or as a JSON value. */
function normalize (option: SubmitOption, value: unknown, what: string, client: ClientSide): unknown {
  const fail = (expected: string): never => {
    throw new UsageError(`bad ${what}: ${JSON.stringify(value)} (expected ${expected})`)
  }
  const strings = (v: unknown): string[] => typeof v === 'string'
    ? [v]
    : Array.isArray(v) && v.every(s => typeof s === 'string') ? v : fail('a string or an array of strings')
  switch (option.kind) {
    case 'string':
      return typeof value === 'string' && value !== '' ? value : fail('a non-empty string')
    case 'list':
      return splitList(strings(value))
    case 'int':
      return typeof value === 'string' || typeof value === 'number' ? parseInteger(value, what, option.min) : fail('an integer')
    case 'duration':
      return typeof value === 'string' || typeof value === 'number' ? parseDuration(value, what) : fail('a duration such as 30s')
    case 'time':
      if (typeof value === 'number') return value
      return typeof value === 'string' ? new Date(parseBegin(value, client.now, what)).toISOString() : fail('a time such as 2026-12-24T18:00')
    case 'export':
      return parseExport(splitList(strings(value)), what)
    case 'size':
      return typeof value === 'string' || typeof value === 'number' ? parseMemory(value, what) : fail('a size such as 512M')
    case 'dir':
      return typeof value === 'string' && value !== '' ? resolve(client.cwd, value) : fail('a directory')
    case 'bool':
      return typeof value === 'boolean' ? value : fail('true or false')
    case 'env': {
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const entries = Object.entries(value)
        if (!entries.every(([, v]) => typeof v === 'string')) fail('an object of string values')
        return Object.fromEntries(entries)
      }
      const env: Record<string, string> = {}
      for (const item of strings(value)) {
        const eq = item.indexOf('=')
        const key = eq >= 0 ? item.slice(0, eq) : item
        if (key === '') fail('K=V or K')
        const copied = client.env[key]
        if (eq < 0 && copied === undefined) throw new UsageError(`bad ${what}: ${key} is not set in this environment`)
        env[key] = eq >= 0 ? item.slice(eq + 1) : copied as string
      }
      return env
    }
  }
}

/** The submit options given as flags (only those given). */
export function submitOptionsFromArgs (args: Args, client: ClientSide): Partial<ClientRequest> {
  const request: Record<string, unknown> = {}
  for (const option of SUBMIT_OPTIONS) {
    if (!args.has(option.flag)) continue
    const raw = option.kind === 'bool' ? true : REPEATABLE.has(option.kind) ? args.list(option.flag) : args.string(option.flag)
    request[option.field] = normalize(option, raw, `--${option.flag}`, client)
  }
  return request
}

/**
 * A whole request: defaults (flags) overridden by the job's own fields; `cwd` defaults to the
 * client's, and the client's environment is copied in if it says so.
 */
export function buildRequest (cmd: string[], options: Partial<ClientRequest>, client: ClientSide): SubmitRequest {
  if (cmd.length === 0) throw new UsageError('missing command: meshq sub [opts] -- CMD [ARGS...]')
  const { export: names, ...request } = options
  const env = client.copyEnv === true ? jobEnvironment(client.env, names, request.env) : request.env
  return { ...request, cmd, cwd: request.cwd ?? client.cwd, env }
}

const OPTION_BY_NAME = new Map<string, SubmitOption>(SUBMIT_OPTIONS.flatMap(o => [[o.field, o], [o.flag, o]]))

/** One `--batch` job object (field names: SubmitRequest's or the flags'). */
function jobFromJson (value: unknown, defaults: Partial<ClientRequest>, client: ClientSide): SubmitRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError('expected a JSON object')
  const { cmd, ...rest } = value as Record<string, unknown>
  if (typeof cmd === 'string') throw new UsageError('cmd must be an array of strings (e.g. ["sh", "-c", "..."]), not a string')
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every(a => typeof a === 'string')) {
    throw new UsageError('cmd must be a non-empty array of strings')
  }
  const fields: Record<string, unknown> = {}
  for (const [name, raw] of Object.entries(rest)) {
    const option = OPTION_BY_NAME.get(name)
    if (option === undefined) throw new UsageError(`unknown field '${name}'`)
    if (raw === null) continue
    fields[option.field] = normalize(option, raw, option.field, client)
  }
  return buildRequest(cmd, { ...defaults, ...fields }, client)
}

export const MAX_BATCH_LINE_BYTES = 1024 * 1024

/**
 * Parses `--batch` input: JSON lines, or one JSON array, of job objects. Any error names the line
 * (or the array item) and nothing is returned. `defaults` are the flags given with `--batch`.
 */
export function parseBatch (input: string, defaults: Partial<ClientRequest>, client: ClientSide): SubmitRequest[] {
  const jobs = input.trimStart().startsWith('[') ? parseArray(input, defaults, client) : parseLines(input, defaults, client)
  if (jobs.length === 0) throw new UsageError('--batch: no jobs on stdin')
  return jobs
}

const located = (where: string, err: unknown): UsageError =>
  new UsageError(`${where}: ${err instanceof Error ? err.message : String(err)}`)

function parseArray (input: string, defaults: Partial<ClientRequest>, client: ClientSide): SubmitRequest[] {
  let items: unknown
  try {
    items = JSON.parse(input)
  } catch (err) {
    throw located('input', err)
  }
  if (!Array.isArray(items)) throw new UsageError('input: expected one JSON array of job objects')
  return items.map((item, i) => {
    try {
      return jobFromJson(item, defaults, client)
    } catch (err) {
      throw located(`item ${i + 1}`, err)
    }
  })
}

function parseLines (input: string, defaults: Partial<ClientRequest>, client: ClientSide): SubmitRequest[] {
  const jobs: SubmitRequest[] = []
  input.split('\n').forEach((line, i) => {
    const where = `line ${i + 1}`
    if (Buffer.byteLength(line) > MAX_BATCH_LINE_BYTES) throw new UsageError(`${where}: longer than 1 MiB`)
    if (line.trim() === '') return
    try {
      jobs.push(jobFromJson(JSON.parse(line), defaults, client))
    } catch (err) {
      throw located(where, err)
    }
  })
  return jobs
}
