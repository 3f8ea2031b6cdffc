/**
 * The submit options: one table serves the flags of `meshq sub` (src/cli/submit-options.ts) and
 * the field names of `--batch` and `--expand` lines (batch.ts); their values are checked here.
 */
import { resolve } from 'node:path'
import { UsageError } from '../errors.js'
import { parseDuration } from '../duration.js'
import { parseMemory } from '../size.js'
import type { SubmitRequest } from '../types.js'
import { parseInteger, splitList } from '../values.js'
import { parseBegin } from './begin.js'
import { parseArraySpec } from '../array-task.js'
import { jobEnvironment, parseExport } from './environment.js'

type Kind = 'string' | 'list' | 'int' | 'duration' | 'time' | 'size' | 'dir' | 'env' | 'export' | 'bool' | 'array'

/** A submit as the CLI takes it: `export` says what to copy from the submitter's environment into `env`. */
export interface ClientRequest extends SubmitRequest {
  export?: string[]
}

export interface SubmitOption {
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
  {
    field: 'afterAny', flag: 'after-any', kind: 'list', arg: 'ID[,ID]',
    help: 'run after these jobs end, whatever their outcome (repeatable)'
  },
  {
    field: 'afterGroupAny', flag: 'after-group-any', kind: 'list', arg: 'G',
    help: 'run after every job of group G has ended, whatever the outcome (repeatable)'
  },
  { field: 'pri', flag: 'pri', kind: 'int', arg: 'N', help: 'priority: higher runs first (default 0)' },
  { field: 'retries', flag: 'retries', kind: 'int', arg: 'N', min: 0, help: 'retries after a failure (default 0)' },
  { field: 'ttr', flag: 'ttr', kind: 'duration', arg: 'DUR', help: 'lease time-to-run (default 30s)' },
  { field: 'timeout', flag: 'timeout', kind: 'duration', arg: 'DUR', help: 'kill the job after it has run this long' },
  { field: 'delay', flag: 'delay', kind: 'duration', arg: 'DUR', help: 'do not start before this long from now' },
  {
    field: 'begin', flag: 'begin', kind: 'time', arg: 'TIME',
    help: 'do not start before TIME: 2026-12-24T18:00 (ISO 8601), HH:MM (next), now+1h'
  },
  { field: 'cwd', flag: 'cwd', kind: 'dir', arg: 'DIR', help: 'working directory (default: the current directory)' },
  { field: 'env', flag: 'env', kind: 'env', arg: 'K=V', help: 'set a variable; K alone copies it from this environment (repeatable)' },
  {
    field: 'export', flag: 'export', kind: 'export', arg: 'ALL|NONE|K1,K2',
    help: 'what to copy from this environment (default ALL but session and MESHQ_ variables; NONE with --batch)'
  },
  { field: 'tag', flag: 'tag', kind: 'list', arg: 'T', help: 'run only on nodes with tag T (repeatable)' },
  { field: 'cores', flag: 'cores', kind: 'int', arg: 'N', min: 1, help: 'slots the job takes (default 1)' },
  { field: 'out', flag: 'out', kind: 'string', arg: 'FILE', help: 'also write the output to FILE on the node that runs it' },
  {
    field: 'onSuccess', flag: 'on-success', kind: 'string', arg: 'CMD',
    help: 'run CMD (sh -c) where the job ran, after an attempt that succeeded'
  },
  {
    field: 'onFailure', flag: 'on-failure', kind: 'string', arg: 'CMD',
    help: 'run CMD (sh -c) where the job ran, after the attempt that made it fail for good'
  },
  { field: 'onExit', flag: 'on-exit', kind: 'string', arg: 'CMD', help: 'run CMD (sh -c) where the job ran, after every attempt' },
  {
    field: 'tmpdir', flag: 'tmpdir', kind: 'bool',
    help: 'run in a fresh private directory under the cwd, also TMPDIR; removed after success'
  },
  { field: 'keepTmpdir', flag: 'keep-tmpdir', kind: 'bool', help: 'with --tmpdir: never remove the private directory' },
  { field: 'cleanup', flag: 'cleanup', kind: 'bool', help: 'with --tmpdir: remove the private directory after a failure too' },
  {
    field: 'mem', flag: 'mem', kind: 'size', arg: 'SIZE',
    help: 'run it only on a node with SIZE of memory free, and kill it when its processes use more (RSS), e.g. 512M, 2G'
  },
  {
    field: 'expand', flag: 'expand', kind: 'string', arg: 'GEN',
    help: 'first run GEN (sh -c) as a job; each JSON line it prints (as for --batch) becomes a job this one waits for'
  },
  {
    field: 'array', flag: 'array', kind: 'array', arg: 'A-B[:STEP][%N]',
    help: 'a job array: one task per index, which it sees as MESHQ_ARRAY_INDEX; %N caps its tasks running at once'
  },
  {
    field: 'arrayLimit', flag: 'array-limit', kind: 'int', arg: 'N', min: 1,
    help: 'with --array: at most N of its tasks running at once across the mesh'
  },
  { field: 'id', flag: 'id', kind: 'string', arg: 'KEY', help: 'idempotency key: a second submit with KEY returns the first job' },
  { field: 'allowMissing', flag: 'allow-missing', kind: 'bool', help: 'accept --after ids that are not known (yet)' }
]

const REPEATABLE: ReadonlySet<Kind> = new Set(['list', 'env'])

/** The option may be given more than once (as a flag). */
export const isRepeatable = (option: SubmitOption): boolean => REPEATABLE.has(option.kind)

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
export function normalize (option: SubmitOption, value: unknown, what: string, client: ClientSide): unknown {
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
      if (typeof value !== 'string') return fail('a time such as 2026-12-24T18:00')
      return new Date(parseBegin(value, client.now, what)).toISOString()
    case 'export':
      return parseExport(splitList(strings(value)), what)
    case 'size':
      return typeof value === 'string' || typeof value === 'number' ? parseMemory(value, what) : fail('a size such as 512M')
    case 'dir':
      return typeof value === 'string' && value !== '' ? resolve(client.cwd, value) : fail('a directory')
    case 'bool':
      return typeof value === 'boolean' ? value : fail('true or false')
    case 'array':
      if (typeof value !== 'string') return fail('a range such as 1-1000 or 1-1000:2%10')
      try {
        parseArraySpec(value)
      } catch (err) {
        throw new UsageError((err as Error).message)
      }
      return value
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

/**
 * A whole request: defaults (flags) overridden by the job's own fields; `cwd` defaults to the
 * client's, and the client's environment is copied in if it says so.
 */
export function buildRequest (cmd: string[], options: Partial<ClientRequest>, client: ClientSide): SubmitRequest {
  if (cmd.length === 0) throw new UsageError('missing command: meshq sub [opts] -- CMD [ARGS...]')
  const { export: names, ...request } = options
  if (request.arrayLimit != null && request.array == null) {
    throw new UsageError('--array-limit needs --array: it caps the tasks of an array')
  }
  const env = client.copyEnv === true ? jobEnvironment(client.env, names, request.env) : request.env
  return { ...request, cmd, cwd: request.cwd ?? client.cwd, env }
}
