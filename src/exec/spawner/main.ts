/**
 * The spawner: a small process, forked by the node at start, that starts the node's jobs and
 * captures their output (`client.ts` is its other end).
 *
 * Why a process of its own: `spawn()` forks the caller, and fork copies the caller's page tables, so
 * its cost grows with the caller's memory. A node of a few hundred MiB spent about a third of its
 * CPU inside `spawn()`, blocking its event loop each time; this process stays small. It keeps no
 * state a job needs to survive it: jobs run in their own process groups, the node signals them
 * directly, and the node's watchdog kills them if the node dies. When the node goes (the IPC
 * channel closes) the spawner kills the jobs it is running and exits: a job the node died too soon
 * to register with its watchdog dies too.
 */
import { execa } from 'execa'
import { killCgroup, spawnInside } from '../cgroup.js'
import { log } from '../log.js'
import { JobOutputs } from '../output.js'
import { readStatSync, signalGroup } from '../proc.js'
import type { SpawnerMessage, SpawnOrder } from './protocol.js'

type JobProcess = ReturnType<typeof spawnJob>

/**
 * A message to the node. One sent after the node died fails with EPIPE, which would otherwise end
 * this process as an unhandled 'error' before 'disconnect' kills its jobs: it is dropped instead.
 */
const send = (message: SpawnerMessage): void => {
  if (process.connected) process.send?.(message, undefined, undefined, () => {})
}

/** The jobs whose leaders have not exited: their process group ids, and their cgroups. */
const running = new Map<number, string | undefined>()

const codeOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | null)?.code

/** Spawns the job as the leader of its own process group, without a shell. */
function spawnJob (order: SpawnOrder) {
  const [file, ...args] = order.cmd
  return execa(file, args, {
    cwd: order.cwd,
    env: order.env,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    detached: true,
    cleanup: false
  })
}

/** Runs one order to its end; never rejects. */
async function run (order: SpawnOrder): Promise<void> {
  const { id } = order
  let outputs: JobOutputs
  try {
    outputs = await JobOutputs.open(order.outputs.paths, order.outputs.out, order.outputs.capBytes)
  } catch (err) {
    send({ type: 'failed', id, stage: 'outputs', code: codeOf(err), message: (err as Error).message })
    return
  }
  let child: JobProcess
  let contained = false
  try {
    const { cgroup } = order
    ;({ value: child, contained } = cgroup === undefined
      ? { value: spawnJob(order), contained: false }
      : spawnInside(cgroup.dir, cgroup.home, () => spawnJob(order)))
  } catch (err) {
    // refused before any process existed (a NUL byte in an argument): this job can never start
    await outputs.close()
    send({ type: 'failed', id, stage: 'refused', code: codeOf(err), message: (err as Error).message })
    return
  }
  const startedAt = Date.now()
  const pid = child.pid
  if (pid === undefined) {
    await outputs.close()
    const error = await child
    send({ type: 'failed', id, stage: 'spawn', code: error.code, message: String(error.originalMessage) })
    return
  }
  // read now, before the event loop gets a chance to reap the process and free its pid
  send({ type: 'spawned', id, pid, startedAt, stat: readStatSync(pid), contained })
  running.set(pid, contained ? order.cgroup?.dir : undefined)
  let drainTimer: NodeJS.Timeout | undefined
  child.nodeChildProcess.once('exit', () => {
    running.delete(pid)
    send({ type: 'exited', id, endedAt: Date.now() })
    drainTimer = setTimeout(() => { abandonOutput(child, pid) }, order.drainMs)
  })
  const [outcome] = await Promise.all([child, outputs.consume(child.stdout, 'stdout'), outputs.consume(child.stderr, 'stderr')])
  clearTimeout(drainTimer)
  const summary = await outputs.close()
  send({ type: 'done', id, exitCode: outcome.exitCode, signal: outcome.signal, summary })
}

/** The node killed what it could reach after the leader exited; a process outside its reach still holds the output. */
function abandonOutput (child: JobProcess, pid: number): void {
  log('group %d: output still held open by a process outside the job\'s reach; closing it', pid)
  child.stdout.destroy()
  child.stderr.destroy()
}

// Terminal and session signals aimed at the node's group are the node's to handle: the spawner
// goes when the node does, by the IPC channel closing.
for (const signal of ['SIGINT', 'SIGHUP', 'SIGTERM'] as const) process.on(signal, () => {})
process.on('disconnect', () => {
  for (const [pgid, cgroup] of running) {
    signalGroup(pgid, 'SIGKILL')
    if (cgroup !== undefined) killCgroup(cgroup)
  }
  process.exit(0)
})
process.on('message', (order: SpawnOrder) => { void run(order) })
