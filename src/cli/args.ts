/**
 * The CLI's argument parser: flag specs, parsing, value checks and help text. Dependency-free.
 */
import { UsageError } from '../errors.js'
import { parseDuration } from '../duration.js'
import { parseInteger } from '../values.js'

export interface FlagSpec {
  /** Long name without the dashes: `after-group`. */
  name: string
  /** One-letter alias without the dash: `f`. */
  short?: string
  /** Placeholder of the value (`DUR`); a flag without one is a boolean switch. */
  arg?: string
  /** May be given several times; every value is kept. */
  repeat?: boolean
  help: string
}

export type FlagValue = string | string[] | true

export class Args {
  constructor (
    readonly command: string,
    private readonly values: Map<string, FlagValue>,
    readonly positionals: string[],
    /** Whether `--` ended the flags. */
    readonly endOfFlags = false
  ) {}

  has (name: string): boolean {
    return this.values.has(name)
  }

  /** A boolean switch. */
  bool (name: string): boolean {
    return this.values.get(name) === true
  }

  /** A flag's value (the last one if repeated). */
  string (name: string): string | undefined {
    const value = this.values.get(name)
    if (value === undefined || value === true) return undefined
    return Array.isArray(value) ? value.at(-1) : value
  }

  /** Every value of a repeatable flag, in order. */
  list (name: string): string[] {
    const value = this.values.get(name)
    if (value === undefined || value === true) return []
    return Array.isArray(value) ? value : [value]
  }

  /** A flag's value as an integer, checked. */
  int (name: string, min = Number.MIN_SAFE_INTEGER): number | undefined {
    const value = this.string(name)
    return value === undefined ? undefined : parseInteger(value, `--${name}`, min)
  }

  /** A flag's value as milliseconds, checked. */
  duration (name: string): number | undefined {
    const value = this.string(name)
    return value === undefined ? undefined : parseDuration(value, `--${name}`)
  }
}

export interface ParseOptions {
  /** The first positional starts a command line: it and everything after it are positionals. */
  restAfterFirstPositional?: boolean
}

/**
 * Parses `argv` against `specs`: `--flag value`, `--flag=value`, `-f`, `--` (end of flags).
 * Throws UsageError naming the command for an unknown flag or a missing value.
 */
export function parseArgs (command: string, argv: string[], specs: FlagSpec[], options: ParseOptions = {}): Args {
  const byName = new Map<string, FlagSpec>()
  for (const spec of specs) {
    byName.set(`--${spec.name}`, spec)
    if (spec.short !== undefined) byName.set(`-${spec.short}`, spec)
  }
  const values = new Map<string, FlagValue>()
  const positionals: string[] = []
  const hint = `(see 'meshq ${command} --help')`
  let endOfFlags = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1))
      endOfFlags = true
      break
    }
    if (!arg.startsWith('-') || arg === '-') {
      if (options.restAfterFirstPositional === true) {
        positionals.push(...argv.slice(i))
        break
      }
      positionals.push(arg)
      continue
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1
    const key = eq >= 0 ? arg.slice(0, eq) : arg
    const spec = byName.get(key)
    if (spec === undefined) throw new UsageError(`unknown flag ${key} for 'meshq ${command}' ${hint}`)
    let value: string | true
    if (spec.arg === undefined) {
      if (eq >= 0) throw new UsageError(`flag --${spec.name} takes no value ${hint}`)
      value = true
    } else if (eq >= 0) {
      value = arg.slice(eq + 1)
    } else {
      if (i + 1 >= argv.length) throw new UsageError(`flag ${key} needs a value (${spec.arg}) ${hint}`)
      value = argv[++i]
    }
    if (spec.repeat === true && value !== true) {
      const previous = values.get(spec.name)
      values.set(spec.name, [...(Array.isArray(previous) ? previous : []), value])
    } else {
      values.set(spec.name, value)
    }
  }
  return new Args(command, values, positionals, endOfFlags)
}

export interface HelpSpec {
  usage: string
  summary: string
  description?: string
  flags: FlagSpec[]
}

/** The `--help` text of a command: usage, description and every flag. */
export function helpText ({ usage, summary, description, flags }: HelpSpec): string {
  const lines = [`Usage: meshq ${usage}`, '', summary]
  if (description !== undefined) lines.push('', description)
  if (flags.length > 0) {
    const labels = flags.map(f => {
      const long = `--${f.name}${f.arg === undefined ? '' : ` ${f.arg}`}`
      return f.short === undefined ? `    ${long}` : `-${f.short}, ${long}`
    })
    const width = Math.max(...labels.map(l => l.length))
    lines.push('', 'Flags:')
    flags.forEach((f, i) => lines.push(`  ${labels[i].padEnd(width)}  ${f.help}`))
  }
  return lines.join('\n') + '\n'
}
