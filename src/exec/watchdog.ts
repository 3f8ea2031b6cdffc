/**
 * The orphan guard: one watchdog process per executor that SIGKILLs the jobs' process groups when the
 * node dies, however it dies (even by SIGKILL).
 *
 * The watchdog is a tiny `/bin/sh` loop in its own process group (so terminal signals aimed at the
 * node do not reach it). It reads `+<pgid>` / `-<pgid>` lines from a pipe whose only writer is the
 * node; the kernel closes that pipe when the node exits, the loop sees EOF and kills every group still
 * registered. Being a shell script, it runs the same from `dist/` and from the TypeScript sources and
 * costs a few hundred KiB.
 */
import { existsSync } from 'node:fs'
import { Socket } from 'node:net'
import { execa } from 'execa'
import { WatchdogError } from './errors.js'
import { log } from './log.js'

/**
 * The bash version also fences: the node sends `h` heartbeats and `f<µs>`, the longest it may go
 * silent while it runs jobs whose leases others could take over. A node that is paused (SIGSTOP) or
 * stalled that long has its jobs killed here, before their leases lapse elsewhere and they rerun.
 */
const BASH_SCRIPT = [
  "trap '' HUP INT",
  "groups=' '; fence=0; last=${EPOCHREALTIME/./}",
  'while :; do',
  '  if IFS= read -r -t 0.1 line; then',
  '    case $line in',
  '      h) last=${EPOCHREALTIME/./} ;;',
  '      f*) fence=${line#f}; last=${EPOCHREALTIME/./} ;;',
  '      +*) groups="$groups${line#+} " ;;',
  '      -*) g=${line#-}; case $groups in *" $g "*) groups="${groups%% $g *} ${groups#* $g }" ;; esac ;;',
  '    esac',
  '  elif [ $? -le 128 ]; then break; fi',
  '  if [ "$fence" -gt 0 ] && [ $(( ${EPOCHREALTIME/./} - last )) -gt "$fence" ]; then',
  '    for g in $groups; do kill -9 -$g 2>/dev/null; done; groups=\' \'; fence=0',
  '  fi',
  'done',
  'for g in $groups; do kill -9 -$g 2>/dev/null; done'
].join('\n')

/** Without bash: the same guard against the node's death, without fencing. */
const SH_SCRIPT = [
  "trap '' HUP INT",
  "groups=' '",
  'while IFS= read -r line; do',
  '  case $line in',
  '    +*) groups="$groups${line#+} " ;;',
  '    -*) g=${line#-}; case $groups in *" $g "*) groups="${groups%% $g *} ${groups#* $g }" ;; esac ;;',
  '  esac',
  'done',
  'for g in $groups; do kill -9 -$g 2>/dev/null; done'
].join('\n')

const BASH = '/bin/bash'
const HEARTBEAT_MS = 250

function spawnWatchdog () {
  const [shell, script] = existsSync(BASH) ? [BASH, BASH_SCRIPT] : ['/bin/sh', SH_SCRIPT]
  return execa(shell, ['-c', script], {
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
  /** Groups registered with their fence (ms, 0 for none), replayed to a new watchdog if the current one dies. */
  readonly #groups = new Map<number, number>()
  #process: WatchdogProcess
  #closing = false
  #fenceMs = 0
  readonly #heartbeat: NodeJS.Timeout
  /** When the heartbeat timer last ran (performance.now()), and the last long gap between two runs. */
  #lastBeat = performance.now()
  #lastGap = { end: -Infinity, length: 0 }

  constructor () {
    this.#process = this.#spawn()
    this.#heartbeat = setInterval(() => { this.#beat() }, HEARTBEAT_MS)
    this.#heartbeat.unref()
  }

  #beat (): void {
    const now = performance.now()
    // recorded whatever the fence is now: the fenced groups may have been removed before this runs
    if (now - this.#lastBeat > 2 * HEARTBEAT_MS) this.#lastGap = { end: now, length: now - this.#lastBeat }
    this.#lastBeat = now
    if (this.#fenceMs > 0) this.#send('h\n')
  }

  /**
   * Whether the node went silent longer than `fenceMs` since `since` (performance.now()), or is
   * silent that long right now: the watchdog will then have killed the fenced groups. A job that
   * died by SIGKILL after such a silence was fenced, not failed.
   */
  silentSince (since: number, fenceMs: number): boolean {
    const gap = this.#lastGap
    return (gap.end >= since && gap.length > fenceMs) || performance.now() - this.#lastBeat > fenceMs
  }

  /** Guards a group; with `fenceMs`, the group is also killed if the node goes silent that long. */
  add (pgid: number, fenceMs = 0): void {
    this.#groups.set(pgid, fenceMs)
    this.#send(`+${pgid}\n`)
    this.#updateFence()
  }

  remove (pgid: number): void {
    if (!this.#groups.delete(pgid)) return
    this.#send(`-${pgid}\n`)
    this.#updateFence()
  }

  /** The tightest fence of the guarded groups: the watchdog acts on one limit for all. */
  #updateFence (): void {
    const fences = [...this.#groups.values()].filter(f => f > 0)
    const fenceMs = fences.length > 0 ? Math.min(...fences) : 0
    if (fenceMs === this.#fenceMs) return
    this.#fenceMs = fenceMs
    this.#send(`f${fenceMs * 1000}\n`)
  }

  /** Ends the pipe (the watchdog then kills the groups still registered) and waits for it to exit. */
  async close (): Promise<void> {
    this.#closing = true
    clearInterval(this.#heartbeat)
    this.#process.nodeChildProcess.ref()
    this.#process.stdin.end()
    await this.#process
  }

  #spawn (): WatchdogProcess {
    const watchdog = spawnWatchdog()
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
    for (const pgid of this.#groups.keys()) this.#send(`+${pgid}\n`)
    if (this.#fenceMs > 0) this.#send(`f${this.#fenceMs * 1000}\n`)
  }

  #send (line: string): void {
    this.#process.stdin.write(line)
  }
}
