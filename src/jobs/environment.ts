/**
 * The submitter's environment, copied into a job as Slurm (`--export=ALL`) and pueue do.
 */
import { UsageError } from '../errors.js'
import { MAX_ENV_BYTES, envBytes } from '../env-size.js'

/**
 * Never copied unless named with `--export` or `--env`: the shell's bookkeeping, and what belongs
 * to the submitter's login session (terminal, agent sockets, display), which means nothing where
 * the job runs. Variables starting with `MESHQ_` (meshq's home, its join token, the ids of the job
 * a submit runs in) are not copied either: the node sets its own.
 */
const SESSION_VARIABLES: ReadonlySet<string> = new Set([
  'PWD', 'OLDPWD', 'SHLVL', '_',
  'TERM', 'TERMCAP', 'COLORTERM', 'TMUX', 'TMUX_PANE', 'STY', 'WINDOW',
  'DISPLAY', 'WAYLAND_DISPLAY', 'XAUTHORITY', 'DBUS_SESSION_BUS_ADDRESS', 'XDG_RUNTIME_DIR', 'XDG_SESSION_ID',
  'SSH_AUTH_SOCK', 'SSH_AGENT_PID', 'SSH_CLIENT', 'SSH_CONNECTION', 'SSH_TTY'
])

const copiedByDefault = (name: string): boolean => !SESSION_VARIABLES.has(name) && !name.startsWith('MESHQ_')

/** `--export` values: `ALL` (the default), `NONE`, or the names to copy. */
export const EXPORT_ALL = 'ALL'
export const EXPORT_NONE = 'NONE'

/** Checks `--export` (already split at commas): ALL and NONE stand alone. */
export function parseExport (names: string[], what: string): string[] {
  const keyword = names.find(n => [EXPORT_ALL, EXPORT_NONE].includes(n.toUpperCase()))
  if (keyword !== undefined) {
    if (names.length > 1) throw new UsageError(`bad ${what}: ${keyword} cannot be combined with names`)
    return [keyword.toUpperCase()]
  }
  const assignment = names.find(n => n.includes('='))
  if (assignment !== undefined) throw new UsageError(`bad ${what}: '${assignment}' (give names; set values with --env K=V)`)
  if (names.length === 0) throw new UsageError(`bad ${what}: expected ALL, NONE or K1,K2`)
  return names
}

/** The variables `--export` copies from the submitter's environment. */
function exported (env: NodeJS.ProcessEnv, names: string[]): Record<string, string> {
  const copy: Record<string, string> = {}
  const all = names[0] === EXPORT_ALL
  if (names[0] === EXPORT_NONE) return copy
  for (const name of all ? Object.keys(env) : names) {
    const value = env[name]
    if (value !== undefined && (!all || copiedByDefault(name))) copy[name] = value
  }
  return copy
}

/**
 * A job's environment: the submitter's (as `--export` narrows it) under the job's own `--env`.
 * Over the cap, a usage error says how to narrow it, and nothing is submitted.
 */
export function jobEnvironment (
  submitter: NodeJS.ProcessEnv, names: string[] | undefined, own: Record<string, string> | undefined
): Record<string, string> {
  const env = { ...exported(submitter, names ?? [EXPORT_ALL]), ...own }
  const bytes = envBytes(env)
  if (bytes > MAX_ENV_BYTES) {
    const size = `${Math.ceil(bytes / 1024)} KiB, over the ${MAX_ENV_BYTES / 1024} KiB a job may carry`
    throw new UsageError(`the job's environment is ${size}: narrow it with --export NONE or --export K1,K2`)
  }
  return env
}
