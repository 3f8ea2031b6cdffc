/**
 * Reading Linux `/proc` and signalling process groups.
 */
import { readFileSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'

/** CPU times in `/proc/<pid>/stat` are in ticks of USER_HZ, which Linux fixes at 100 for user space. */
const MS_PER_TICK = 10

const PAGE_KB = pageKb()

export interface ProcStat {
  pid: number
  pgrp: number
  /** utime + stime + cutime + cstime: the process's own CPU time plus that of the children it reaped. */
  cpuMs: number
  rssKb: number
  /** Field 22, ticks since boot: with the pid, identifies a process across pid reuse. */
  startTime: string
}

/** The fields of `/proc/<pid>/stat` from field 3 on: the command name (field 2) may contain spaces and parentheses. */
function statFields (text: string): string[] {
  return text.slice(text.lastIndexOf(')') + 2).split(' ')
}

/**
 * `/proc/<pid>/stat` gives the RSS in pages. Node has no page size API, but libuv computes our own RSS
 * as that field times the page size: the ratio, rounded to a power of two (the RSS may move between
 * the two readings), is the page size.
 */
function pageKb (): number {
  const rssPages = Number(statFields(readFileSync('/proc/self/stat', 'latin1'))[24 - 3])
  return 2 ** Math.round(Math.log2(process.memoryUsage.rss() / rssPages)) / 1024
}

function parseStat (pid: number, text: string): ProcStat {
  const fields = statFields(text)
  const field = (n: number): number => Number(fields[n - 3])
  const ticks = field(14) + field(15) + field(16) + field(17)
  return { pid, pgrp: field(5), cpuMs: ticks * MS_PER_TICK, rssKb: field(24) * PAGE_KB, startTime: fields[22 - 3] ?? '' }
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
