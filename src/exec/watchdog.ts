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
import { Socket } from 'node:net'
import { execa } from 'execa'
import { WatchdogError } from './errors.js'
import { log } from './log.js'

const SCRIPT = [
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

function spawnWatchdog () {
  return execa('/bin/sh', ['-c', SCRIPT], {
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
  /** Groups registered, replayed to a new watchdog if the current one dies. */
  readonly #groups = new Set<number>()
  #process: WatchdogProcess
  #closing = false

  constructor () {
    this.#process = this.#spawn()
  }

  add (pgid: number): void {
    this.#groups.add(pgid)
    this.#send(`+${pgid}\n`)
  }

  remove (pgid: number): void {
    if (this.#groups.delete(pgid)) this.#send(`-${pgid}\n`)
  }

  /** Ends the pipe (the watchdog then kills the groups still registered) and waits for it to exit. */
  async close (): Promise<void> {
    this.#closing = true
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
    for (const pgid of this.#groups) this.#send(`+${pgid}\n`)
  }

  #send (line: string): void {
    this.#process.stdin.write(line)
  }
}
