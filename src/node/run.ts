import { availableParallelism } from 'node:os'
import createDebug from 'debug'
import type { NodeOptions } from './options.js'
import { clockFromEnv } from '../clock.js'
import type { Clock } from '../clock.js'
import { Ledger } from '../crdt/ledger.js'
import { executor, type Containment, type Executor } from '../exec/executor.js'
import { OutputFiles } from '../exec/output-files.js'
import type { SealedJob, JobTable } from '../sched/table.js'
import type { Scheduler } from '../sched/scheduler.js'
import { controlServer } from '../api/server.js'
import type { ControlServer } from '../api/server.js'
import { UsageError } from '../errors.js'
import { Lifecycle, startupStep } from '../lifecycle.js'
import type { Startable } from '../lifecycle.js'
import { NodeEngine } from './engine.js'
import { apiToken, openHome, saveCluster } from './home.js'
import type { Home } from './home.js'
import { Membership, decodeToken } from '../net/membership.js'
import type { JoinToken } from '../net/membership.js'
import { Mesh } from '../net/mesh.js'
import { Retention } from './retention.js'
import { sealer } from './sealer.js'
import { IdleMemory } from './idle-memory.js'
import { Throughput } from './stats.js'
import { JobLogs } from './job-logs.js'
import { CLAIMS_TOPIC, claimBatchCodec, scheduling } from './scheduling.js'
import { VERSION } from '../version.js'

const log = createDebug('meshq:node')
/** How long `--join` may take: reaching the inviter and receiving the member list. */
const JOIN_TIMEOUT_MS = 30_000
/** How long a drained node waits for its peers to receive its leave before it exits. */
const LEAVE_SYNC_TIMEOUT_MS = 3000

export interface RunningNode {
  engine: NodeEngine
  ledger: Ledger
  /** Settles when the node has stopped: rejects if a part of it failed to stop. */
  stopped: Promise<void>
  /** Stop claiming; exit once running jobs have finished. */
  drain: () => Promise<void>
  /** Kill running jobs (released for others) and stop now. */
  stop: () => Promise<void>
  addresses: () => string[]
}

function parseHostPort (value: string): { host: string, port: number } {
  const colon = value.lastIndexOf(':')
  const port = Number(value.slice(colon + 1))
  if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`bad --api address '${value}' (expected HOST:PORT)`)
  }
  return { host: value.slice(0, colon), port }
}

/** Knobs for tests and benchmarks; the defaults are what a real node uses. */
export interface NodeTuning {
  clock?: Clock
  segmentCapacity?: number
  sealDelayMs?: number
}

/** One line on stderr when jobs cannot be contained in cgroups, saying what escapes. */
function warnIfUncontained (containment: Containment): void {
  if (!('uncontained' in containment)) return
  process.stderr.write(
    `meshq: jobs are contained by process group only (${containment.uncontained}): processes that leave a job's process group ` +
    "(setsid) outlive its kill, timeout and fencing and this node's death\n"
  )
}

/** Starts a node on its home and returns once it serves its control socket. */
export async function startNode (options: NodeOptions, tuning: NodeTuning = {}): Promise<RunningNode> {
  const clock = tuning.clock ?? clockFromEnv()
  const tcp = options.api != null ? parseHostPort(options.api) : undefined
  const token = options.join != null ? decodeToken(options.join) : undefined
  const home = await openHome(options.home, token)
  const slots = options.slots ?? availableParallelism()
  const { store, self } = home
  const ledger = new Ledger({ store, self, segmentCapacity: tuning.segmentCapacity })
  const membership = new Membership({ self, ledger, clock })
  const mesh: Mesh = new Mesh({
    self,
    privateKey: home.key,
    clusterId: home.cluster.id,
    psk: Buffer.from(home.cluster.psk, 'base64'),
    listen: options.listen,
    ledger,
    membership,
    clock,
    status: () => engine.load(),
    logs: (request, signal) => logs.local(request, signal)
  })
  const exec = executor({ home: home.dir, killGraceMs: options.killGraceMs, cgroups: options.cgroups })
  const { table, claims, scheduler } = scheduling({
    self, clock, ledger, store, executor: exec, slots, tags: options.tags, memBytes: options.memBytes, claimWindowMs: options.claimWindowMs,
    transport: mesh.channel(CLAIMS_TOPIC, claimBatchCodec),
    peers: () => mesh.liveStatuses(),
    members: () => membership.activeIds().length,
    othersSilentFor: windowMs => mesh.othersSilentFor(windowMs)
  })
  const outputs = new OutputFiles(home.dir)
  const retention = new Retention({ self, clock, ledger, table, outputs, retainMs: options.retainMs })
  ledger.onChange(changes => {
    table.ingest(changes)
    membership.ingest(changes)
    retention.ingest(changes)
  })
  const throughput = new Throughput(table, clock)
  const logs = new JobLogs({ self, outputs, mesh, job: async id => await engine.get(id) })
  const engine: NodeEngine = new NodeEngine({
    self, clusterId: home.cluster.id, psk: home.cluster.psk, home: home.dir, version: VERSION, tags: options.tags,
    clock, ledger, table, scheduler, membership, mesh, retention, throughput, logs,
    onDrained: () => { void leave().finally(stopQuietly) }
  })
  membership.onDrainRequest(() => { void engine.drain() })
  const sealing = sealer({
    ledger, table, render: entry => engine.view(entry), renderArray: id => engine.arrayView(id), delayMs: tuning.sealDelayMs
  })
  ledger.onReceivedWhole(async seg => { await sealing.sealNow(seg) })
  // in start order; they stop in reverse (the scheduler's runs end before the claims publish their releases)
  const components = new Lifecycle({
    store: { start: () => {}, stop: async () => { await store.close() } },
    ledger: ledgerOf(ledger, table, home.founded),
    executor: executorOf(exec),
    recovery: startupStep(async () => { await recover(scheduler) }),
    throughput,
    mesh,
    cluster: startupStep(async () => { await enterCluster(home, token, mesh, membership, { slots, tags: options.tags }) }),
    control: controlApi(engine, home, tcp),
    claims,
    scheduler,
    sealer: sealing,
    retention,
    memory: new IdleMemory({ clock, onChange: listener => ledger.onChange(listener), busy: () => scheduler.running > 0 })
  })

  /** After a drain: says so in the ledger, and gives the fact a moment to reach the peers. */
  const leave = async (): Promise<void> => {
    await membership.leave().catch(err => { log('could not record the leave: %s', (err as Error).message) })
    await mesh.flushSync(AbortSignal.timeout(LEAVE_SYNC_TIMEOUT_MS))
  }
  let markStopped = (_stopping: Promise<void>): void => {}
  const stopped = new Promise<void>(resolve => { markStopped = resolve })
  const stop = async (): Promise<void> => {
    const stopping = components.stop()
    markStopped(stopping)
    await stopping
  }
  /** For callers that do not wait: a failure to stop is reported through `stopped`. */
  const stopQuietly = (): void => { stop().catch(() => {}) }

  await components.start()
  return {
    engine,
    ledger,
    stopped,
    drain: async () => { await engine.drain() },
    addresses: () => mesh.addresses(),
    stop
  }
}

/** The ledger: opened from the store, with the summaries of sealed segments put in the job table. */
function ledgerOf (ledger: Ledger, table: JobTable, founded: boolean): Startable {
  return {
    start: async () => {
      await ledger.open({ createMeta: founded })
      for await (const summaries of ledger.sealedSummaries<SealedJob[]>()) table.addSealed(summaries)
    },
    stop: async () => { await ledger.close() }
  }
}

function executorOf (exec: Executor): Startable {
  return {
    start: async () => {
      await exec.start()
      warnIfUncontained(exec.containment())
    },
    stop: async () => { await exec.stop() }
  }
}

/** Kills and records as lost what a previous run of this node left running (before claims start). */
async function recover (scheduler: Scheduler): Promise<void> {
  const recovered = await scheduler.recover()
  if (recovered > 0) log('recovered %d interrupted attempts', recovered)
}

/** Joins with `--join` (or founds the cluster), then announces this node's addresses, slots and tags. */
async function enterCluster (
  home: Home, token: JoinToken | undefined, mesh: Mesh, membership: Membership, offer: { slots: number, tags: string[] }
): Promise<void> {
  if (token != null && home.joining) {
    await mesh.join(token, AbortSignal.timeout(JOIN_TIMEOUT_MS))
    await saveCluster(home.store, home.cluster)
  }
  if (home.founded) await membership.found(mesh.addresses())
  await membership.announce({ addrs: mesh.addresses(), ...offer })
}

/** The control API on the socket (and on TCP with `--api`, whose token is read or made at start). */
function controlApi (engine: NodeEngine, home: Home, tcp: { host: string, port: number } | undefined): Startable {
  let server: ControlServer | undefined
  return {
    start: async () => {
      const withToken = tcp != null ? { ...tcp, token: await apiToken(home.dir) } : undefined
      server = controlServer({ engine, socketPath: home.socketPath, tcp: withToken })
      await server.start()
    },
    stop: async () => { await server?.stop() }
  }
}

/** Small segments and quick sealing for tests of whole node processes (MESHQ_TEST_SEGMENT_CAPACITY, MESHQ_TEST_SEAL_DELAY_MS). */
function tuningFromEnv (env: NodeJS.ProcessEnv): NodeTuning {
  const number = (name: string): number | undefined => {
    const value = env[name]
    if (value == null || value === '') return undefined
    const n = Number(value)
    if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`bad ${name}: '${value}' (expected a whole number >= 1)`)
    return n
  }
  return { segmentCapacity: number('MESHQ_TEST_SEGMENT_CAPACITY'), sealDelayMs: number('MESHQ_TEST_SEAL_DELAY_MS') }
}

/** `meshq node`: runs in the foreground until drained (SIGINT) or stopped (SIGTERM). */
export async function runNode (options: NodeOptions): Promise<void> {
  // the last line of defence: a peer's input that slipped past validation must not end the node
  process.on('unhandledRejection', reason => {
    process.stderr.write(`meshq: internal error (the node keeps running): ${(reason as Error)?.stack ?? String(reason)}\n`)
  })
  const node = await startNode(options, tuningFromEnv(process.env))
  const status = node.engine.status()
  process.stdout.write(`meshq node ${status.id} ready (cluster ${status.clusterId}, ${status.slots} slots, home ${status.home})\n`)
  for (const addr of node.addresses()) process.stdout.write(`listening on ${addr}\n`)
  // a failure to stop is reported by `node.stopped`
  const stopQuietly = (): void => { node.stop().catch(() => {}) }
  let interrupts = 0
  process.on('SIGINT', () => {
    if (++interrupts === 1) {
      process.stderr.write('draining: running jobs finish, no new ones start (Ctrl-C again to stop now)\n')
      void node.drain()
    } else {
      stopQuietly()
    }
  })
  process.on('SIGTERM', stopQuietly)
  await node.stopped
}
