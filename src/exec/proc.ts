/**
 * Reading Linux `/proc` and signalling process groups.
 */
import { readFileSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'

/** CPU times in `/proc/<pid>/stat` are in ticks of USER_HZ, which Linux fixes at 100 for user space. */
export const MS_PER_TICK = 10

export interface ProcStat {
  pid: number
  pgrp: number
  /** utime + stime + cutime + cstime: the process's own CPU time plus that of the children it reaped. */
  cpuTicks: number
  /** Field 22, ticks since boot: with the pid, identifies a process across pid reuse. */
  startTime: string
}

/** Parses `/proc/<pid>/stat`. The command name (field 2) may contain spaces and parentheses. */
function parseStat (pid: number, text: string): ProcStat {
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  const field = (n: number): string => fields[n - 3] ?? ''
  const ticks = [14, 15, 16, 17].reduce((sum, n) => sum + Number(field(n)), 0)
  return { pid, pgrp: Number(field(5)), cpuTicks: ticks, startTime: field(22) }
}

/** The process's stat, or undefined when it is gone. */
export async function readStat (pid: number): Promise<ProcStat | undefined> {
  try {
    return parseStat(pid, await readFile(`/proc/${pid}/stat`, 'latin1'))
  } catch {
    return undefined
  }
}

/** Synchronous on purpose: callers need the reading before the event loop can reap the process. */
export function readStatSync (pid: number): ProcStat | undefined {
  try {
    return parseStat(pid, readFileSync(`/proc/${pid}/stat`, 'latin1'))
  } catch {
    return undefined
  }
}

/** Resident set size in KiB from `/proc/<pid>/status`; 0 when gone (or a zombie, or a kernel thread). */
export async function readRssKb (pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'latin1')
    return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0)
  } catch {
    return 0
  }
}

/** Every process currently in `/proc`. */
export async function listPids (): Promise<number[]> {
  const names = await readdir('/proc')
  return names.filter(name => /^\d+$/.test(name)).map(Number)
}

/** kill(-0) or kill(-1) would signal our own group or every process we may signal. */
function isGroupId (pgid: number): boolean {
  return Number.isSafeInteger(pgid) && pgid > 1
}

/** Sends `signal` to every process of group `pgid`; false when the group no longer exists. */
export function signalGroup (pgid: number, signal: NodeJS.Signals): boolean {
  if (!isGroupId(pgid)) throw new RangeError(`not a process group id: ${pgid}`)
  try {
    return process.kill(-pgid, signal)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw err
  }
}

/**
 * Kills group `pid` with SIGKILL if `/proc/<pid>/stat` still shows that start time (so the pid was
 * not reused by an unrelated process). True if it killed.
 */
export function killLeftover (pid: number, startTime: string): boolean {
  if (!isGroupId(pid)) return false // e.g. 0: the job never spawned
  const stat = readStatSync(pid)
  if (stat === undefined || stat.startTime !== startTime || stat.pgrp !== pid) return false
  return signalGroup(pid, 'SIGKILL')
}
