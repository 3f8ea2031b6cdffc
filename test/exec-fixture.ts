/**
 * Processes that outlive their job, and a node stand-in for the orphan-guard tests: a separate Node process that runs the executor from the
 * TypeScript sources (Node strips the types, and a resolve hook maps the sources' `./x.js` imports
 * onto `./x.ts`), runs one job and prints `{pgid, cgroup}` once it runs (in mode
 * `kill-watchdog-first`, once its watchdog was killed and replaced). The test then kills or stops it.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { executor, type Executor, type ExecutorInit } from '../src/exec/executor.js'
import { tempDir, waitFor } from './helpers.js'

/** A job that leaves a process in a session of its own (out of its process group), its pid in `pidfile`, and waits. */
export const ESCAPING_JOB = ['sh', '-c', 'setsid sleep 300 & echo $! > pidfile; sleep 300']

/** Fields 3 on of `/proc/<pid>/stat` (state, ppid, pgrp, session, ...), and its command name; undefined once gone. */
async function procStat (pid: number): Promise<{ comm: string, fields: string[] } | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'latin1').catch(() => undefined)
  if (stat === undefined) return undefined
  return { comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), fields: stat.slice(stat.lastIndexOf(')') + 2).split(' ') }
}

/** A zombie is dead: only its parent (here init, which may be slow to reap) still has its entry. */
export async function alive (pid: number): Promise<boolean> {
  const stat = await procStat(pid)
  return stat !== undefined && stat.fields[0] !== 'Z'
}

/**
 * The pid `ESCAPING_JOB` wrote to `pidfile`, once that process is `sleep` in a session of its own:
 * out of the job's process group. `found` gets it as soon as it is known (to clean it up).
 */
export async function escapedPid (pidfile: string, found: (pid: number) => void): Promise<number> {
  const pid = await waitFor(async () => Number((await readFile(pidfile, 'utf8')).trim()), { what: 'the pidfile', timeout: 30_000 })
  found(pid)
  await waitFor(async () => {
    const stat = await procStat(pid)
    return stat?.comm === 'sleep' && Number(stat.fields[3]) === pid
  }, { what: `process ${pid} to run sleep in a session of its own`, timeout: 30_000 })
  return pid
}

/** Killed processes take a moment to die; the deadline is generous for a loaded machine. */
export async function waitForGone (pid: number, timeout = 10_000): Promise<void> {
  await waitFor(async () => !await alive(pid), { what: `process ${pid} to die`, timeout, interval: 20 })
}

export async function killIfAlive (pid: number): Promise<void> {
  if (await alive(pid)) process.kill(pid, 'SIGKILL')
}

export type FixtureMode = 'plain' | 'kill-watchdog-first'

export interface FixtureNode {
  node: ChildProcess
  exited: Promise<unknown>
  /** The job's process group, and its cgroup directory when it has one. */
  pgid: number
  cgroup?: string
}

export interface FixtureJob {
  cmd: string[]
  /** Passed on to the executor (the watchdog's fence). */
  fenceMs?: number
}

/** Starts the fixture node in `dir` (also its home and the job's cwd); resolves once its job runs. */
export async function startFixtureNode (dir: string, job: FixtureJob, mode: FixtureMode = 'plain'): Promise<FixtureNode> {
  const fixture = join(dir, 'node.mjs')
  await writeFile(fixture, fixtureSource(new URL('../src/exec/executor.ts', import.meta.url).href))
  const node = spawn(process.execPath, [fixture, dir, mode, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = once(node, 'exit')
  try {
    const [line] = await Promise.race([
      once(createInterface({ input: node.stdout }), 'line') as Promise<[string]>,
      exited.then(([code]) => { throw new Error(`the fixture node exited (${String(code)})`) })
    ])
    return { node, exited, ...JSON.parse(line) as { pgid: number, cgroup?: string } }
  } catch (err) {
    node.kill('SIGKILL')
    throw err
  }
}

function fixtureSource (executorUrl: string): string {
  return `
import { readdirSync, readFileSync } from 'node:fs'
import { registerHooks } from 'node:module'
registerHooks({
  resolve (specifier, context, next) {
    try {
      return next(specifier, context)
    } catch (err) {
      if (specifier.startsWith('.') && specifier.endsWith('.js')) return next(specifier.slice(0, -3) + '.ts', context)
      throw err
    }
  }
})

function watchdogs () {
  return readdirSync('/proc').filter(name => /^\\d+$/.test(name)).map(Number).filter(pid => {
    try {
      const stat = readFileSync('/proc/' + pid + '/stat', 'latin1')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      return ppid === process.pid && readFileSync('/proc/' + pid + '/cmdline', 'latin1').includes('groups=')
    } catch {
      return false
    }
  })
}

const { executor } = await import(${JSON.stringify(executorUrl)})
const [home, mode, job] = process.argv.slice(2)
const { cmd, fenceMs } = JSON.parse(job)
const exec = executor({ home })
await exec.start()
const handle = await exec.run({ jobId: 'orphan', epoch: 1, cmd, fenceMs, cwd: home, env: {} })
if (mode === 'kill-watchdog-first') {
  const [first] = watchdogs()
  process.kill(first, 'SIGKILL')
  while (!watchdogs().some(pid => pid !== first)) await new Promise(resolve => setTimeout(resolve, 20))
}
console.log(JSON.stringify({ pgid: handle.pid, cgroup: exec.containment().cgroup }))
setInterval(() => {}, 60_000)
`
}

/**
 * The temp directories and started executors of one test file, all cleaned up by `cleanUp` (call it
 * in `afterEach`), newest first. `later` adds a cleanup of the test's own.
 */
export function executorScratch (prefix: string, killGraceMs: number) {
  const cleanups: Array<() => Promise<void>> = []
  const later = (cleanup: () => Promise<void>): void => { cleanups.push(cleanup) }
  const scratch = async (): Promise<string> => {
    const { dir, cleanup } = await tempDir(prefix)
    later(cleanup)
    return dir
  }
  /** A started executor with a fresh home, stopped after the test. */
  const started = async (options: Partial<ExecutorInit> = {}): Promise<{ exec: Executor, home: string }> => {
    const home = await scratch()
    const exec = executor({ home, killGraceMs, ...options })
    await exec.start()
    later(async () => { await exec.stop() })
    return { exec, home }
  }
  const cleanUp = async (): Promise<void> => { for (const cleanup of cleanups.splice(0).reverse()) await cleanup() }
  return { scratch, started, later, cleanUp }
}
