/**
 * What the node does after an attempt has ended and been recorded: it runs the job's hooks, then
 * removes the attempt's private directory. Nothing here changes the job's state: a hook that fails
 * or hangs is logged (`DEBUG=meshq:hooks`) and, after `HOOK_TIMEOUT_MS`, killed.
 */
import { appendFile, mkdir, rm, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import createDebug from 'debug'
import { execa } from 'execa'
import { JobState, type JobRunOptions } from '../types.js'
import type { RunRequest, RunResult } from './executor.js'
import type { OutputPaths } from './output-files.js'
import { signalGroup } from './proc.js'
import type { Watchdog } from './watchdog.js'

const log = createDebug('meshq:hooks')

/** By default a hook still running after this long is killed (SIGTERM to its group, SIGKILL after the grace). */
export const HOOK_TIMEOUT_MS = 60_000

export interface AftermathContext {
  watchdog: Watchdog
  killGraceMs: number
  hookTimeoutMs: number
}

export interface AftermathInit {
  /** The node's home: hooks get it as MESHQ_HOME, so `meshq` in a hook talks to this node. */
  home: string
  req: RunRequest
  outputPaths: OutputPaths
  /** The hooks' stdout and stderr are appended here. */
  hookLog: string
  /** The attempt's private directory, when it has one. */
  privateDir?: string
}

type HookName = 'on-success' | 'on-failure' | 'on-exit'

const succeeded = (result: RunResult): boolean => result.failReason === undefined && result.exitCode === 0

/**
 * The hooks that apply, in order: on-success after an attempt that succeeded, on-failure after the
 * attempt that left the job failed for good (no retries left), then on-exit after every attempt.
 */
function hooksFor (options: JobRunOptions, result: RunResult, jobState?: JobState): Array<[HookName, string]> {
  const hooks: Array<[HookName, string | undefined]> = [
    ['on-success', succeeded(result) ? options.onSuccess : undefined],
    ['on-failure', jobState === JobState.failed ? options.onFailure : undefined],
    ['on-exit', options.onExit]
  ]
  return hooks.filter((hook): hook is [HookName, string] => hook[1] !== undefined)
}

/** A successful attempt's private directory goes; a failed one's stays unless `cleanup`; `keepTmpdir` keeps all. */
function removesPrivateDir (options: JobRunOptions, result: RunResult): boolean {
  if (options.keepTmpdir === true) return false
  return succeeded(result) || options.cleanup === true
}

export async function wrapUp (init: AftermathInit, context: AftermathContext, result: RunResult, jobState?: JobState): Promise<void> {
  const { req, privateDir } = init
  const hooks = hooksFor(req, result, jobState)
  if (hooks.length > 0) await mkdir(dirname(init.hookLog), { recursive: true })
  for (const [name, command] of hooks) {
    await runHook(name, command, hookEnv(init, result, jobState), await hookCwd(init), init.hookLog, context)
  }
  if (privateDir !== undefined && removesPrivateDir(req, result)) {
    await rm(privateDir, { recursive: true, force: true }).catch(err => { log('cannot remove %s: %s', privateDir, (err as Error).message) })
  }
}

function hookEnv ({ home, req, outputPaths, privateDir }: AftermathInit, result: RunResult, jobState?: JobState): Record<string, string> {
  const env: Record<string, string> = {
    ...req.env,
    MESHQ_HOME: home,
    MESHQ_JOB_ID: req.jobId,
    MESHQ_ATTEMPT: String(req.epoch),
    MESHQ_NODE: req.node ?? '',
    MESHQ_JOB_STATE: jobState ?? '',
    MESHQ_EXIT_CODE: result.exitCode === undefined ? '' : String(result.exitCode),
    MESHQ_SIGNAL: result.signal ?? '',
    MESHQ_FAIL_REASON: result.failReason ?? '',
    MESHQ_STDOUT: outputPaths.stdout,
    MESHQ_STDERR: outputPaths.stderr
  }
  if (privateDir !== undefined) env.MESHQ_TMPDIR = privateDir
  return env
}

/** Where the job ran: its private directory (removed only after the hooks), else its cwd; `/` if gone. */
async function hookCwd ({ req, privateDir }: AftermathInit): Promise<string> {
  for (const dir of [privateDir, req.cwd]) {
    if (dir !== undefined && await stat(dir).then(s => s.isDirectory(), () => false)) return dir
  }
  return '/'
}

async function runHook (
  name: HookName, command: string, env: Record<string, string>, cwd: string, hookLog: string, context: AftermathContext
): Promise<void> {
  const child = execa('/bin/sh', ['-c', command], {
    cwd,
    env,
    stdin: 'ignore',
    stdout: { file: hookLog, append: true },
    stderr: { file: hookLog, append: true },
    reject: false,
    cleanup: false,
    killDescendants: true,
    timeout: context.hookTimeoutMs,
    forceKillAfterDelay: context.killGraceMs
  })
  const pid = child.pid
  if (pid !== undefined) context.watchdog.add(pid)
  const outcome = await child
  if (pid !== undefined) {
    signalGroup(pid, 'SIGKILL') // what the hook left running must not outlive it
    context.watchdog.remove(pid)
  }
  if (outcome.exitCode === 0) return
  const why = outcome.timedOut
    ? `timed out after ${context.hookTimeoutMs} ms`
    : outcome.signal !== undefined ? `killed by ${outcome.signal}` : `exited ${String(outcome.exitCode ?? outcome.originalMessage)}`
  log('%s hook of %s/%d %s: %s', name, env.MESHQ_JOB_ID, Number(env.MESHQ_ATTEMPT), why, command)
  await appendFile(hookLog, `[meshq: ${name} hook ${why}]\n`).catch(() => {})
}
