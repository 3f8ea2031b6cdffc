/**
 * The watchdog's fence, driven by this test's own event loop: a synchronous busy wait stops the
 * heartbeats exactly as a stalled node's would.
 */
import { spawn } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { BASH_SCRIPT, Watchdog } from '../src/exec/watchdog.js'
import { waitFor } from './helpers.js'

const FENCE_MS = 300

/** A process group of its own (`sleep` as leader), and whether it has exited. */
function group (): { pid: number, exited: () => boolean } {
  const child = spawn('sleep', ['120'], { detached: true, stdio: 'ignore' })
  let exited = false
  child.on('exit', () => { exited = true })
  return { pid: child.pid as number, exited: () => exited }
}

/** Blocks this event loop for `ms`: no heartbeat goes out meanwhile. */
function stall (ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) { /* busy */ }
}

/**
 * Stalls past the fence, lets the loop run, again, until `done` (or fails after `timeoutMs`). Each
 * stall is four fences long: the watchdog must get the CPU during it to see the silence, which on a
 * loaded machine (other test files running beside this one) can take a while.
 */
async function stallUntil (what: string, done: () => boolean, timeoutMs = 25_000): Promise<void> {
  const end = performance.now() + timeoutMs
  while (!done()) {
    if (performance.now() > end) throw new Error(`the watchdog did not fence ${what}`)
    stall(4 * FENCE_MS)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

describe.runIf(process.platform === 'linux')('the watchdog\'s fence', () => {
  it('holds after a first fence, also when a job starts before the fenced ones are removed', async () => {
    const watchdog = new Watchdog()
    const groups = [group(), group(), group()]
    try {
      const [a, b, c] = groups
      watchdog.add(a.pid, FENCE_MS)
      watchdog.add(b.pid, FENCE_MS)
      await stallUntil('the first two jobs', () => a.exited() && b.exited())
      // the node wakes and starts a job before it has handled the fenced jobs' ends: the tightest
      // fence never changes, so the node sends no new one; before the fix the watchdog had dropped
      // its fence after the first and never fenced again
      watchdog.add(c.pid, FENCE_MS)
      watchdog.remove(a.pid)
      watchdog.remove(b.pid)
      await stallUntil('the job started after the first fence', () => c.exited())
      expect(groups.every(g => g.exited())).toBe(true)
    } finally {
      for (const g of groups) if (!g.exited()) process.kill(-g.pid, 'SIGKILL')
      await watchdog.close()
    }
  }, 60_000)

  it('kills every group it guards at the tightest fence, and the node counts each of them fenced, whatever its own fence', async () => {
    const watchdog = new Watchdog()
    const [short, long] = [group(), group()]
    const since = performance.now()
    try {
      watchdog.add(short.pid, FENCE_MS)
      watchdog.add(long.pid, 30_000) // a job with a 60 s TTR beside one with a short one
      await stallUntil('both jobs', () => short.exited() && long.exited())
      // the long job's own fence was never reached, but the watchdog killed it too: it was fenced
      // (recorded lost, run again), not failed; before, it counted as killed by a signal, for good
      expect(watchdog.silentSince(since)).toBe(true)
    } finally {
      for (const g of [short, long]) if (!g.exited()) process.kill(-g.pid, 'SIGKILL')
      await watchdog.close()
    }
  }, 60_000)

  it('fences a silence it slept through: the gap between two heartbeats\' own times counts', async () => {
    // without the gap the job lives: the watchdog's own clock sees heartbeats every 50 ms
    expect(await fedHeartbeats(0)).toBe(false)
    // with it, it is killed although the heartbeats arrive as often: as when the watchdog got no
    // CPU through the node's stall and first ran again with the next heartbeat in its pipe
    expect(await fedHeartbeats(FED_FENCE_MS + 1000)).toBe(true)
  })
})

describe.runIf(process.platform === 'linux')('the watchdog\'s pipe', () => {
  it('keeps a line that a read timed out in the middle of: a job registered so still dies with its node', async () => {
    const job = group()
    const dog = spawn('bash', ['-c', BASH_SCRIPT, 'meshq-watchdog', ''], { stdio: ['pipe', 'ignore', 'ignore'] })
    try {
      // the registration arrives in two pieces, past the script's 0.1 s read timeout: bash's read
      // can also time out in the middle of a line already in the pipe
      const line = `+${job.pid}\n`
      dog.stdin.write(line.slice(0, 3))
      await new Promise(resolve => setTimeout(resolve, 400))
      dog.stdin.write(line.slice(3))
      dog.stdin.end() // the node dies
      await new Promise(resolve => dog.once('exit', resolve))
      await waitFor(() => job.exited(), { what: 'the job to die with its node', timeout: 5000 })
    } finally {
      if (!job.exited()) process.kill(-job.pid, 'SIGKILL')
      dog.kill('SIGKILL')
    }
  })
})

/** A fence long enough that this test's own 50 ms timer is never that late, even on a loaded machine. */
const FED_FENCE_MS = 2000

/**
 * Runs the watchdog script alone, fed as the node feeds it: a fenced job, then heartbeats every
 * 50 ms for 1.5 s whose own times jump by `gapMs` once. Whether the job was killed.
 */
async function fedHeartbeats (gapMs: number): Promise<boolean> {
  const job = group()
  const dog = spawn('bash', ['-c', BASH_SCRIPT, 'meshq-watchdog', ''], { stdio: ['pipe', 'ignore', 'ignore'] })
  try {
    let sent = 1_000_000
    dog.stdin.write(`+${job.pid}\nf${FED_FENCE_MS * 1000}\nh${sent}\n`)
    sent += gapMs * 1000
    const end = performance.now() + 1500
    while (!job.exited() && performance.now() < end) {
      dog.stdin.write(`h${sent}\n`)
      sent += 50_000
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    return job.exited()
  } finally {
    if (!job.exited()) process.kill(-job.pid, 'SIGKILL')
    dog.kill('SIGKILL')
  }
}
