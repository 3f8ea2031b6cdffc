import createDebug from 'debug'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { asError } from '../errors.js'
import type { Clock } from '../clock.js'
import type { Ledger } from '../crdt/ledger.js'
import { META_DOC } from '../crdt/facts.js'
import { Lifecycle, startupStep } from '../lifecycle.js'
import type { Startable } from '../lifecycle.js'
import type { PeerView } from '../types.js'
import { Dialer } from './dialer.js'
import { MembershipGate } from './gate.js'
import { agentString } from './handshake.js'
import { HeadsService } from './heads.js'
import { JoinProtocol } from './join.js'
import { Liveness } from './liveness.js'
import { LogsProtocol } from './logs.js'
import type { LogRequest, LogSource } from './logs.js'
import type { JoinToken, Membership } from './membership.js'
import { createHost, listenError } from './p2p.js'
import type { MeshqLibp2p } from './p2p.js'
import { catchUp } from './read-barrier.js'
import { StatusBeacon, statusCodec } from './status-gossip.js'
import type { NodeLoad, NodeStatusGossip } from './status-gossip.js'
import { SyncService } from './sync.js'
import { GossipTopics } from './topics.js'
import type { GossipChannel, GossipCodec } from './topics.js'

const log = createDebug('meshq:mesh')

export interface MeshInit {
  self: string
  privateKey: PrivateKey
  clusterId: string
  psk: Uint8Array
  listen: string[]
  ledger: Ledger
  membership: Membership
  clock: Clock
  /** This node's load, gossiped to the others. */
  status: () => NodeLoad
  /** This node's output of an attempt, served to members over `/meshq/logs/1`. */
  logs: LogSource
}

/** What exists once the host does. */
interface Running {
  host: MeshqLibp2p
  sync: SyncService
  heads: HeadsService
  join: JoinProtocol
  logs: LogsProtocol
  dialer: Dialer
  parts: Lifecycle
}

/**
 * The node's place in the cluster: the libp2p host (p2p.ts) and what runs on it, each in a file of
 * its own: the membership gate (gate.ts), ledger sync (sync.ts), the heads, join and logs protocols
 * (heads.ts, join.ts, logs.ts), (re)dialling members (dialer.ts), the gossip topics (topics.ts) and
 * what is heard on them (liveness.ts, status-gossip.ts).
 */
export class Mesh implements Startable {
  private readonly init: MeshInit
  private readonly gate: MembershipGate
  private readonly topics: GossipTopics
  private readonly liveness: Liveness
  private readonly beacon: StatusBeacon
  private running?: Running

  constructor (init: MeshInit) {
    this.init = init
    const { self, membership, clock } = init
    this.gate = new MembershipGate({ self, membership })
    this.liveness = new Liveness({ self, membership, clock, connected: () => this.connected(), addresses: () => this.addresses() })
    this.topics = new GossipTopics({ clusterId: init.clusterId, membership, heard: peer => { this.liveness.heardFrom(peer) } })
    const statuses = this.topics.channel<NodeStatusGossip>('status/1', statusCodec)
    statuses.subscribe(status => { this.liveness.statusOf(status) })
    this.beacon = new StatusBeacon(self, init.status, statuses, clock, () => membership.activeIds().length)
  }

  /** A gossip topic of the cluster (`meshq/<cluster>/<name>`), declared before `start`. */
  channel<T> (name: string, codec: GossipCodec<T>): GossipChannel<T> {
    return this.topics.channel(name, codec)
  }

  async start (): Promise<void> {
    const { self, ledger, membership, clock } = this.init
    const host = await createHost({
      privateKey: this.init.privateKey,
      psk: this.init.psk,
      listen: this.init.listen,
      allowPeer: peer => this.gate.admits(peer),
      userAgent: agentString(this.gate.protocol)
    }).catch((err: unknown) => { throw listenError(asError(err)) })
    const allowed = (peer: string): boolean => this.gate.allowed(peer)
    const sync = new SyncService({ host, ledger, self, allowed })
    const heads = new HeadsService({ host, frontier: () => ledger.frontier(), allowed })
    const join = new JoinProtocol({ self, host, ledger, membership, gate: this.gate, sync, addresses: () => this.addresses() })
    const logs = new LogsProtocol({ host, allowed, logs: this.init.logs })
    const dialer = new Dialer({ self, host, membership, sync, clock })
    const parts = new Lifecycle({
      host: { start: () => {}, stop: async () => { await host.stop() } }, // listening since createHost
      heads: startupStep(async () => { await heads.start() }),
      join: startupStep(async () => { await join.start() }),
      logs: startupStep(async () => { await logs.start() }),
      sync,
      gate: startupStep(async () => { this.gate.watch(host, sync) }),
      gossip: { start: () => { this.topics.start(host.services.pubsub) }, stop: () => { this.topics.stop() } },
      liveness: this.liveness,
      dialer,
      status: this.beacon
    })
    this.running = { host, sync, heads, join, logs, dialer, parts }
    await parts.start()
    log('listening on %s', this.addresses().join(', '))
  }

  async stop (): Promise<void> {
    await this.running?.parts.stop()
  }

  /** See `catchUp` in read-barrier.ts. */
  async catchUp (timeoutMs: number): Promise<{ unreachable: string[] }> {
    const { sync, heads } = this.started()
    return await catchUp({ ...this.init, sync, heads, connected: () => this.connected() }, timeoutMs)
  }

  /** Resolves once every sync peer has this node's member facts (or when `signal` aborts). */
  async flushSync (signal: AbortSignal): Promise<void> {
    const { sync } = this.started()
    while (!sync.delivered(META_DOC) && !signal.aborted) await new Promise(resolve => setTimeout(resolve, 50))
  }

  addresses (): string[] {
    return this.started().host.getMultiaddrs().map(a => a.toString())
  }

  /** `meshq connect`: see `Dialer.connect`. */
  async connect (address: string): Promise<string> {
    return await this.started().dialer.connect(address)
  }

  /** See `JoinProtocol.join`. */
  async join (token: JoinToken, signal: AbortSignal): Promise<void> {
    await this.started().join.join(token, signal)
  }

  /** The output of an attempt that ran on another node, streamed from it. */
  remoteLog (peer: string, request: LogRequest, signal: AbortSignal): AsyncIterable<Uint8Array> {
    return this.started().logs.fetch(peer, request, signal)
  }

  /** See `Liveness.othersSilentFor`. */
  othersSilentFor (windowMs: number): boolean {
    return this.liveness.othersSilentFor(windowMs)
  }

  /** See `Liveness.liveStatuses`. */
  liveStatuses (): NodeStatusGossip[] {
    return this.liveness.liveStatuses()
  }

  /** Members as this node sees them, with connection state and load. */
  /** Connected peers that announced an older protocol minor version than `minor`, with theirs. */
  olderPeers (minor: number): Array<{ peer: string, minor: number }> {
    return this.gate.olderThan(minor, this.connected())
  }

  peers (self: NodeLoad): PeerView[] {
    return this.liveness.peers(self)
  }

  private connected (): Set<string> {
    return new Set(this.running?.host.getPeers().map(peerIdString) ?? [])
  }

  private started (): Running {
    if (this.running == null) throw new Error('the mesh has not started')
    return this.running
  }
}

/**
 * Peer ids as strings, remembered per id object: `toString` encodes the key in base58 every time,
 * and the set of connected peers is read for every job a scheduling pass ranks.
 */
const peerIdStrings = new WeakMap<PeerId, string>()
function peerIdString (peer: PeerId): string {
  let text = peerIdStrings.get(peer)
  if (text == null) peerIdStrings.set(peer, text = peer.toString())
  return text
}
