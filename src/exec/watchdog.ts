/**
 * The orphan guard: one watchdog process per executor that SIGKILLs the jobs when the node dies,
 * however it dies (even by SIGKILL).
 *
 * The watchdog is a tiny `/bin/sh` loop in its own process group (so terminal signals aimed at the
 * node do not reach it). It reads `+<job>` / `-<job>` lines from a pipe whose only writer is the
 * node; the kernel closes that pipe when the node exits, the loop sees EOF and kills every job still
 * registered. A job is `<pgid>`, or `<pgid>:<cgroup>` when it has a cgroup in the node's (`cgroup.ts`):
 * then its whole tree is killed, also what left its process group. At EOF the watchdog also kills
 * whatever is left in the node's cgroup and removes it. Being a shell script, it runs the same from
 * `dist/` and from the TypeScript sources and costs a few hundred KiB.
 */
import { existsSync } from 'node:fs'
import { Socket } from 'node:net'
import { execa } from 'execa'
import { WatchdogError } from './errors.js'
import { log } from './log.js'

/** `$cg` is the node's cgroup directory, '' without one; `reap` kills the registered jobs. */
const PRELUDE = [
  "trap '' HUP INT",
  "groups=' '; cg=$1",
  'reap () {',
  '  for g in $groups; do',
  '    kill -9 -${g%%:*} 2>/dev/null',
  '    case $g in *:*) echo 1 > "$cg/${g#*:}/cgroup.kill" ;; esac',
  '  done',
  "  groups=' '",
  '}'
]

const REGISTER = [
  '      +*) groups="$groups${line#+} " ;;',
  '      -*) g=${line#-}; case $groups in *" $g "*) groups="${groups%% $g *} ${groups#* $g }" ;; esac ;;'
]

/** After the node's death: kill what is left in its cgroup, then remove it once its processes are gone. */
const LAST_RITES = [
  'reap',
  'if [ -n "$cg" ]; then',
  '  echo 1 > "$cg/cgroup.kill"',
  '  for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do',
  '    for d in "$cg"/*/; do rmdir "$d"; done',
  '    rmdir "$cg" && break',
  '    sleep 0.25',
  '  done',
  'fi'
]

/**
 * The bash version also fences: the node sends `h<µs>` heartbeats (its own monotonic time) and
 * `f<µs>`, the longest it may go silent while it runs jobs whose leases others could take over. A
 * node that is paused (SIGSTOP) or stalled that long has its jobs killed here, before their leases
 * lapse elsewhere and they rerun. The silence is measured twice: by this loop's clock while it
 * waits, and between two heartbeats' own times when one arrives, so that a stall is caught even
 * when this loop was starved of CPU through it and first runs again after the next heartbeat.
 */
export const BASH_SCRIPT = [
  ...PRELUDE,
  'fence=0; prev=; last=${EPOCHREALTIME/./}; part=',
  'while :; do',
  '  if IFS= read -r -t 0.1 line; then',
  '    line=$part$line; part=',
  '    case $line in',
  '      h*) sent=${line#h}',
  '          if [ -n "$sent" ] && [ -n "$prev" ] && [ "$fence" -gt 0 ] && [ $(( sent - prev )) -gt "$fence" ]; then reap; fi',
  '          prev=$sent; last=${EPOCHREALTIME/./} ;;',
  // a new fence starts a new count: heartbeats stop while no job is fenced
  '      f*) fence=${line#f}; prev=; last=${EPOCHREALTIME/./} ;;',
  ...REGISTER,
  '    esac',
  // a read that times out may have taken part of a line, even one already in the pipe: keep it
  // (lost, a `+pgid` left a job unguarded, and it outlived its node's SIGKILL in the fault suite)
  '  elif [ $? -gt 128 ]; then part=$part$line',
  '  else break; fi',
  // the fence stays armed after a reap: the node sends a fence only when it changes, and one that
  // starts a job before it has seen its fenced jobs end sends none
  '  if [ "$fence" -gt 0 ] && [ $(( ${EPOCHREALTIME/./} - last )) -gt "$fence" ]; then',
  '    reap; last=${EPOCHREALTIME/./}',
  '  fi',
  'done',
  ...LAST_RITES
].join('\n')

/** Without bash: the same guard against the node's death, without fencing. */
const SH_SCRIPT = [
  ...PRELUDE,
  'while IFS= read -r line; do',
  '  case $line in',
  ...REGISTER.map(line => line.slice(2)),
  '  esac',
  'done',
  ...LAST_RITES
].join('\n')

const BASH = '/bin/bash'
const HEARTBEAT_MS = 250
/** Long gaps between heartbeats remembered, for `silentSince`: a run's gaps, on a node stalled again and again. */
const MAX_GAPS = 256

function spawnWatchdog (cgroupDir: string) {
  const [shell, script] = existsSync(BASH) ? [BASH, BASH_SCRIPT] : ['/bin/sh', SH_SCRIPT]
  return execa(shell, ['-c', script, 'meshq-watchdog', cgroupDir], {
    stdin: 'pipe',
    stdout: 'ignore',
    stderr: 'ignore',
    detached: true,
    cleanup: false,
    buffer: false,
    reject: false
  })
}

type WatchdogProcess = ReturnType<typeof spawnWatchdog>

export class Watchdog {
  /** Jobs by group: their line (`<pgid>[:<cgroup>]`) and fence (ms, 0 for none), replayed to a new watchdog if the current one dies. */
  readonly #groups = new Map<number, { job: string, fenceMs: number }>()
  /** The node's cgroup directory, '' without one. */
  readonly #cgroupDir: string
  #process: WatchdogProcess
  #closing = false
  #fenceMs = 0
  readonly #heartbeat: NodeJS.Timeout
  /** When the heartbeat timer last ran (performance.now()), and the recent long gaps between two runs. */
  #lastBeat = performance.now()
  #gaps: Array<{ end: number, length: number, fenceMs: number }> = []

  constructor (cgroupDir = '') {
    this.#cgroupDir = cgroupDir
    this.#process = this.#spawn()
    this.#heartbeat = setInterval(() => { this.#beat() }, HEARTBEAT_MS)
    this.#heartbeat.unref()
  }

  #beat (): void {
    const now = performance.now()
    // recorded whatever the fence is now: the fenced groups may have been removed before this runs
    if (now - this.#lastBeat > 2 * HEARTBEAT_MS) {
      // every recent one, not the last: a shorter gap after the one the watchdog fenced must not hide it
      this.#gaps.push({ end: now, length: now - this.#lastBeat, fenceMs: this.#fenceMs })
      if (this.#gaps.length > MAX_GAPS) this.#gaps.shift()
    }
    this.#lastBeat = now
    if (this.#fenceMs > 0) this.#send(`h${Math.round(now * 1000)}\n`)
  }

  /**
   * Whether the node went silent longer than the watchdog's fence since `since` (performance.now()),
   * or is silent that long right now: the watchdog will then have killed every group it guards. A
   * job that died by SIGKILL after such a silence was fenced, not failed, whatever its own fence: the
   * watchdog acts on the tightest fence for all (a job with a 30 s TTR beside one of 4 s dies with it).
   */
  silentSince (since: number): boolean {
    const now = performance.now()
    return this.#gaps.some(gap => gap.end >= since && gap.fenceMs > 0 && gap.length > gap.fenceMs) ||
      (this.#fenceMs > 0 && now - this.#lastBeat > this.#fenceMs)
  }

  /**
   * Guards a group, and with `cgroup` (its name in the node's cgroup) the job's whole tree; with
   * `fenceMs`, they are also killed if the node goes silent that long.
   */
  add (pgid: number, fenceMs = 0, cgroup?: string): void {
    const job = cgroup === undefined ? String(pgid) : `${pgid}:${cgroup}`
    this.#groups.set(pgid, { job, fenceMs })
    this.#send(`+${job}\n`)
    this.#updateFence()
  }

  remove (pgid: number): void {
    const guarded = this.#groups.get(pgid)
    if (guarded === undefined) return
    this.#groups.delete(pgid)
    this.#send(`-${guarded.job}\n`)
    this.#updateFence()
  }

  /** The tightest fence of the guarded groups: the watchdog acts on one limit for all. */
  #updateFence (): void {
    const fences = [...this.#groups.values()].map(g => g.fenceMs).filter(f => f > 0)
    const fenceMs = fences.length > 0 ? Math.min(...fences) : 0
    if (fenceMs === this.#fenceMs) return
    this.#fenceMs = fenceMs
    this.#send(`f${fenceMs * 1000}\n`)
  }

  /** Ends the pipe (the watchdog then kills the jobs still registered) and waits for it to exit. */
  async close (): Promise<void> {
    this.#closing = true
    clearInterval(this.#heartbeat)
    this.#process.nodeChildProcess.ref()
    this.#process.stdin.end()
    await this.#process
  }

  #spawn (): WatchdogProcess {
    const watchdog = spawnWatchdog(this.#cgroupDir)
    if (watchdog.pid === undefined) throw new WatchdogError('cannot start the watchdog: /bin/sh failed to spawn')
    log('watchdog %d started', watchdog.pid)
    // Neither the watchdog nor its pipe may keep the node alive: the node exiting is what it watches for.
    watchdog.nodeChildProcess.unref()
    if (watchdog.stdin instanceof Socket) watchdog.stdin.unref()
    watchdog.stdin.on('error', err => { log('watchdog pipe: %O', err) })
    void watchdog.then(() => { this.#onExit(watchdog) })
    return watchdog
  }

  #onExit (watchdog: WatchdogProcess): void {
    if (this.#closing || watchdog !== this.#process) return
    log('watchdog %d died; restarting it', watchdog.pid)
    try {
      this.#process = this.#spawn()
    } catch (err) {
      log('jobs are unguarded: %O', err)
      return
    }
    for (const { job } of this.#groups.values()) this.#send(`+${job}\n`)
    if (this.#fenceMs > 0) this.#send(`f${this.#fenceMs * 1000}\n`)
  }

  #send (line: string): void {
    this.#process.stdin.write(line)
  }
}
