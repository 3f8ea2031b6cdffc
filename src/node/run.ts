import { availableParallelism } from 'node:os'
import createDebug from 'debug'
import type { NodeOptions } from '../cli/node-options.js'
import { systemClock } from '../clock.js'
import type { Clock } from '../clock.js'
import { Ledger } from '../crdt/ledger.js'
import { executor } from '../exec/executor.js'
import { JobTable } from '../sched/table.js'
import type { SealedJob } from '../sched/table.js'
import { Scheduler } from '../sched/scheduler.js'
import { controlServer } from '../api/server.js'
import { UsageError } from '../errors.js'
import { NodeEngine } from './engine.js'
import { apiToken, openHome } from './home.js'
import { sealer } from './sealer.js'
import { VERSION } from '../version.js'

const log = createDebug('meshq:node')

export interface RunningNode {
  engine: NodeEngine
  ledger: Ledger
  /** Resolves when the node has stopped. */
  stopped: Promise<void>
  /** Stop claiming; exit once running jobs have finished. */
  drain: () => Promise<void>
  /** Kill running jobs (released for others) and stop now. */
  stop: () => Promise<void>
}

function parseHostPort (value: string): { host: string, port: number } {
  const colon = value.lastIndexOf(':')
  const port = Number(value.slice(colon + 1))
  if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`bad --api address '${value}' (expected HOST:PORT)`)
  return { host: value.slice(0, colon), port }
}

/** Knobs for tests and benchmarks; the defaults are what a real node uses. */
export interface NodeTuning {
  clock?: Clock
  segmentCapacity?: number
  sealDelayMs?: number
}

/** Starts a node on its home and returns once it serves its control socket. */
export async function startNode (options: NodeOptions, tuning: NodeTuning = {}): Promise<RunningNode> {
  const clock = tuning.clock ?? systemClock
  const tcp = options.api != null ? parseHostPort(options.api) : undefined
  const home = await openHome(options.home)
  const { store, self } = home
  const slots = options.slots ?? availableParallelism()
  const ledger = new Ledger({ store, self, segmentCapacity: tuning.segmentCapacity })
  let scheduler: Scheduler | undefined
  const table = new JobTable({ clock, leaseAlive: attempt => attempt.node !== self || (scheduler?.holds(attempt) ?? false) })
  ledger.onChange(changes => table.ingest(changes))
  await ledger.open({ createMeta: home.founded })
  for await (const summaries of ledger.sealedSummaries<SealedJob[]>()) table.addSealed(summaries)
  const exec = executor({ home: home.dir, killGraceMs: options.killGraceMs })
  await exec.start()
  scheduler = new Scheduler({ self, slots, tags: options.tags, clock, table, ledger, store, executor: exec })
  const recovered = await scheduler.recover()
  if (recovered > 0) log('recovered %d interrupted attempts', recovered)

  let resolveStopped = (): void => {}
  const stopped = new Promise<void>(resolve => { resolveStopped = resolve })
  let stopping: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      seals.stop()
      await (scheduler as Scheduler).stop()
      await server.stop()
      await exec.stop()
      await ledger.close()
      await store.close()
      resolveStopped()
    })()
    await stopping
  }
  const engine = new NodeEngine({
    self, clusterId: home.cluster.id, home: home.dir, version: VERSION, tags: options.tags, clock, ledger, table, scheduler,
    onDrained: () => { void stop() }
  })
  const server = controlServer({
    engine,
    socketPath: home.socketPath,
    tcp: tcp != null ? { ...tcp, token: await apiToken(home.dir) } : undefined
  })
  await server.start()
  scheduler.start()
  const seals = sealer({ ledger, table, render: entry => engine.view(entry), delayMs: tuning.sealDelayMs })
  return {
    engine,
    ledger,
    stopped,
    drain: async () => { await engine.drain() },
    stop
  }
}

/** `meshq node`: runs in the foreground until drained (SIGINT) or stopped (SIGTERM). */
export async function runNode (options: NodeOptions): Promise<void> {
  const node = await startNode(options)
  const status = node.engine.status()
  process.stdout.write(`meshq node ${status.id} ready (cluster ${status.clusterId}, ${status.slots} slots, home ${status.home})\n`)
  let interrupts = 0
  process.on('SIGINT', () => {
    if (++interrupts === 1) {
      process.stderr.write('draining: running jobs finish, no new ones start (Ctrl-C again to stop now)\n')
      void node.drain()
    } else {
      void node.stop()
    }
  })
  process.on('SIGTERM', () => { void node.stop() })
  await node.stopped
}
