import { availableParallelism } from 'node:os'
import createDebug from 'debug'
import type { NodeOptions } from './options.js'
import { clockFromEnv } from '../clock.js'
import type { Clock } from '../clock.js'
import { Ledger } from '../crdt/ledger.js'
import { executor, type Containment } from '../exec/executor.js'
import { JobTable } from '../sched/table.js'
import type { SealedJob } from '../sched/table.js'
import { Claims } from '../sched/claims.js'
import { DEFAULT_TTR_MS } from '../jobs/draft.js'
import { Scheduler } from '../sched/scheduler.js'
import { NodeMemory } from '../sched/placement.js'
import { controlServer } from '../api/server.js'
import { UsageError } from '../errors.js'
import { JobState } from '../types.js'
import { NodeEngine } from './engine.js'
import { apiToken, openHome, saveCluster } from './home.js'
import { Membership, decodeToken } from './membership.js'
import { Mesh } from './mesh.js'
import { Retention } from './retention.js'
import { sealer } from './sealer.js'
import { VERSION } from '../version.js'

const log = createDebug('meshq:node')
/** How long `--join` may take: reaching the inviter and receiving the member list. */
const JOIN_TIMEOUT_MS = 30_000
/** How long a drained node waits for its peers to receive its leave before it exits. */
const LEAVE_SYNC_TIMEOUT_MS = 3000

export interface RunningNode {
  engine: NodeEngine
  ledger: Ledger
  /** Resolves when the node has stopped. */
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
  if (colon <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`bad --api address '${value}' (expected HOST:PORT)`)
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
  process.stderr.write(`meshq: jobs are contained by process group only (${containment.uncontained}): processes that leave a job's process group (setsid) outlive its kill, timeout and fencing and this node's death\n`)
}

/** Starts a node on its home and returns once it serves its control socket. */
export async function startNode (options: NodeOptions, tuning: NodeTuning = {}): Promise<RunningNode> {
  const clock = tuning.clock ?? clockFromEnv()
  const tcp = options.api != null ? parseHostPort(options.api) : undefined
  const token = options.join != null ? decodeToken(options.join) : undefined
  const home = await openHome(options.home, token)
  const { store, self } = home
  const slots = options.slots ?? availableParallelism()
  const ledger = new Ledger({ store, self, segmentCapacity: tuning.segmentCapacity })
  let scheduler: Scheduler | undefined
  let claims: Claims | undefined
  const table: JobTable = new JobTable({
    clock,
    leaseAlive: attempt => attempt.node === self
      ? scheduler?.holds(attempt) ?? false
      : claims?.alive(attempt, table.get(attempt.job)?.facts.spec.ttrMs ?? DEFAULT_TTR_MS) ?? true
  })
  const membership = new Membership({ self, ledger, clock })
  const retention = new Retention({ self, clock, ledger, table, home: home.dir, retainMs: options.retainMs })
  ledger.onChange(changes => {
    table.ingest(changes)
    membership.ingest(changes)
    retention.ingest(changes)
  })
  await ledger.open({ createMeta: home.founded })
  for await (const summaries of ledger.sealedSummaries<SealedJob[]>()) table.addSealed(summaries)
  const exec = executor({ home: home.dir, killGraceMs: options.killGraceMs, cgroups: options.cgroups })
  await exec.start()
  warnIfUncontained(exec.containment())
  const mesh: Mesh = new Mesh({
    self, privateKey: home.key, clusterId: home.cluster.id, psk: Buffer.from(home.cluster.psk, 'base64'), listen: options.listen, ledger, membership, clock, status: () => engine.load(), logs: (request, signal) => engine.localLog(request, signal)
  })
  claims = new Claims({
    self,
    clock,
    transport: mesh.claimTransport(),
    windowMs: options.claimWindowMs,
    peers: () => mesh.liveStatuses(),
    members: () => membership.activeIds().length,
    othersSilentFor: windowMs => mesh.othersSilentFor(windowMs),
    onExpired: jobs => {
      table.refresh(jobs)
      scheduler?.schedulePass() // a job whose claim lease lapsed is still "ready": nothing else would wake the scheduler
    },
    onPreempted: job => { scheduler?.preempted(job) },
    onReleased: () => { scheduler?.schedulePass() },
    claimable: (job, epoch) => {
      const derived = table.get(job)?.derived
      return derived == null || (derived.state !== JobState.done && derived.epoch < epoch)
    },
    knownEpoch: job => table.get(job)?.derived.epoch ?? 0,
    ended: (job, epoch) => {
      const entry = table.get(job)
      if (entry == null) return table.sealedJob(job) != null
      return entry.derived.state === JobState.done || [...entry.facts.attempts.values()].some(a => a.epoch === epoch && a.endedAt != null)
    },
    groupOf: job => table.get(job)?.facts.spec.group,
    limitOf: group => table.limitOf(group)
  })
  scheduler = new Scheduler({ self, slots, tags: options.tags, clock, table, ledger, store, executor: exec, claims, memory: new NodeMemory(options.memBytes) })
  const recovered = await scheduler.recover()
  if (recovered > 0) log('recovered %d interrupted attempts', recovered)
  const engine: NodeEngine = new NodeEngine({
    self, clusterId: home.cluster.id, psk: home.cluster.psk, home: home.dir, version: VERSION, tags: options.tags, clock, ledger, table, scheduler, membership, mesh, retention,
    onDrained: () => { void leave().finally(stop) }
  })
  membership.onDrainRequest(() => { void engine.drain() })
  try {
    await mesh.start()
    if (token != null && home.joining) {
      await mesh.join(token, AbortSignal.timeout(JOIN_TIMEOUT_MS))
      await saveCluster(store, home.cluster)
    }
    if (home.founded) await membership.found(mesh.addresses())
    await membership.announce({ addrs: mesh.addresses(), slots, tags: options.tags })
  } catch (err) {
    await mesh.stop()
    await exec.stop()
    await store.close()
    throw err
  }

  /** After a drain: says so in the ledger, and gives the fact a moment to reach the peers. */
  const leave = async (): Promise<void> => {
    await membership.leave().catch(err => { log('could not record the leave: %s', (err as Error).message) })
    await mesh.flushSync(AbortSignal.timeout(LEAVE_SYNC_TIMEOUT_MS))
  }
  let resolveStopped = (): void => {}
  const stopped = new Promise<void>(resolve => { resolveStopped = resolve })
  let stopping: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      seals.stop()
      retention.stop()
      await (scheduler as Scheduler).stop()
      claims?.stop()
      await server.stop()
      await mesh.stop()
      await exec.stop()
      await ledger.close()
      await store.close()
      resolveStopped()
    })()
    await stopping
  }
  const server = controlServer({
    engine,
    socketPath: home.socketPath,
    tcp: tcp != null ? { ...tcp, token: await apiToken(home.dir) } : undefined
  })
  await server.start()
  claims.start()
  scheduler.start()
  const seals = sealer({ ledger, table, render: entry => engine.view(entry), delayMs: tuning.sealDelayMs })
  retention.start()
  return {
    engine,
    ledger,
    stopped,
    drain: async () => { await engine.drain() },
    addresses: () => mesh.addresses(),
    stop
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
