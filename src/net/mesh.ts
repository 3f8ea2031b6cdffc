import { randomBytes } from 'node:crypto'
import createDebug from 'debug'
import type { Connection, IdentifyResult, PeerId, Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { InviteRefusedError, JoinFailedError, ListenError, NotCaughtUpError, PeerNotFoundError, PeerUnreachableError, UsageError, asError } from '../errors.js'
import type { Clock } from '../clock.js'
import type { Ledger } from '../crdt/ledger.js'
import { META_DOC, isJobId } from '../crdt/facts.js'
import type { PeerIdString, PeerView } from '../types.js'
import type { Membership, JoinToken } from './membership.js'
import { createHost } from './p2p.js'
import { agentString, incompatibility, localProtocol } from './handshake.js'
import { TopicValidatorResult } from './gossip.js'
import type { MeshqLibp2p } from './p2p.js'
import { SyncService } from './sync.js'
import { HeadsService } from './heads.js'
import { parseAddrs, validAddrs } from './addrs.js'
import { decodeBatch } from '../sched/claim-batch.js'
import { ReplayGuard } from './replay.js'
import type { ReplayStamp } from './replay.js'
import { StatusStamper, parseStatus, stampOf } from './status-gossip.js'
import type { NodeLoad, NodeStatusGossip } from './status-gossip.js'
import type { ClaimBatch, ClaimTransport } from '../sched/claim-batch.js'
import type { PrivateKey } from '@libp2p/interface'

const log = createDebug('meshq:mesh')

export const JOIN_PROTOCOL = '/meshq/join/1'
export const LOGS_PROTOCOL = '/meshq/logs/1'
/** Largest chunk of output in one logs frame. */
const MAX_LOG_FRAME = 1024 * 1024
const MAX_JOIN_MESSAGE = 16 * 1024
/** How long a peer with the key but no membership may stay connected (to join). */
const JOIN_GRACE_MS = 5000
const REDIAL_MS = 2000
/** How long `meshq connect` tries to reach the address it was given. */
const CONNECT_TIMEOUT_MS = 10_000
/** Also bounds how long two members stay apart after a partition heals. */
const MAX_REDIAL_BACKOFF_MS = 10_000
const STATUS_INTERVAL_MS = 1000
/** How often the awake clock advances (see `AwakeClock`). */
const AWAKE_TICK_MS = 250
/** A member not heard from for this long is shown as unreachable. */
const STATUS_STALE_MS = 10_000

/** What `/meshq/logs/1` asks for: the output of one attempt. */
export interface LogRequest {
  job: string
  epoch: number
  stream: 'stdout' | 'stderr'
  follow: boolean
}

export function parseLogRequest (bytes: Uint8Array): LogRequest | undefined {
  try {
    const r = JSON.parse(new TextDecoder().decode(bytes))
    const valid = isJobId(r?.job) && Number.isSafeInteger(r.epoch) && (r.stream === 'stdout' || r.stream === 'stderr') && typeof r.follow === 'boolean'
    return valid ? { job: r.job, epoch: r.epoch, stream: r.stream, follow: r.follow } : undefined
  } catch {
    return undefined
  }
}

export interface MeshInit {
  self: PeerIdString
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
  logs: (request: LogRequest, signal: AbortSignal) => AsyncIterable<Uint8Array>
}

/**
 * The node's place in the cluster: the libp2p host, the membership gate, (re)dialling members,
 * the join protocol, ledger sync, and the gossip of each node's load.
 */
export class Mesh {
  private readonly init: MeshInit
  host!: MeshqLibp2p
  private started = false
  private sync!: SyncService
  private heads!: HeadsService
  /** The member this node joined through, trusted until the member list arrives. */
  private bootstrap?: string
  private readonly statuses = new Map<string, NodeStatusGossip & { seen: number }>()
  private readonly stamper: StatusStamper
  /** Awake time (see `awake`) each member's last gossip (status or claims) arrived. */
  private readonly heard = new Map<string, number>()
  /** Time this node was awake to hear others: how silence is measured. */
  private readonly awake: AwakeClock
  private readonly backoff = new Map<string, { next: number, delay: number }>()
  private timers: NodeJS.Timeout[] = []
  private redialing = false
  private claimHandler?: (batch: ClaimBatch) => void
  private readonly protocol = localProtocol()
  /** Peers refused by the version handshake. */
  private readonly incompatible = new Set<string>()
  /** Peers that have identified themselves (so their version is checked). */
  private readonly identifiedPeers = new Set<string>()

  constructor (init: MeshInit) {
    this.init = init
    this.awake = new AwakeClock(init.clock, AWAKE_TICK_MS)
    this.stamper = new StatusStamper(randomBytes(6).toString('hex'), () => init.clock.now())
  }

  private get statusTopic (): string {
    return `meshq/${this.init.clusterId}/status/1`
  }

  private get claimTopic (): string {
    return `meshq/${this.init.clusterId}/claims/2`
  }

  /** Claim batches over gossipsub. */
  claimTransport (): ClaimTransport {
    return {
      publish: batch => {
        if (!this.started) return
        void this.host.services.pubsub.publish(this.claimTopic, new TextEncoder().encode(JSON.stringify(batch))).catch(err => {
          log('claim publish failed: %s', (err as Error).message)
        })
      },
      subscribe: handler => { this.claimHandler = handler }
    }
  }

  /**
   * Whether every other active member has been silent (no gossip from it) for `windowMs` of this
   * node's awake time. A member never heard since this start counts from the start.
   */
  othersSilentFor (windowMs: number): boolean {
    const now = this.awake.now()
    return this.init.membership.activeIds().every(p => p === this.init.self || now - (this.heard.get(p) ?? 0) >= windowMs)
  }

  allowed (peer: string): boolean {
    return peer === this.init.self || this.init.membership.isMember(peer) || peer === this.bootstrap
  }

  async start (): Promise<void> {
    const { membership } = this.init
    this.host = await createHost({
      privateKey: this.init.privateKey,
      psk: this.init.psk,
      listen: this.init.listen,
      allowPeer: peer => !membership.isEvicted(peer.toString()) && !this.incompatible.has(peer.toString()),
      userAgent: agentString(this.protocol)
    }).catch((err: unknown) => { throw listenError(asError(err)) })
    this.sync = new SyncService({ host: this.host, ledger: this.init.ledger, self: this.init.self, allowed: peer => this.allowed(peer) })
    this.heads = new HeadsService({ host: this.host, frontier: () => this.init.ledger.frontier(), allowed: peer => this.allowed(peer) })
    await this.heads.start()
    await this.host.handle(JOIN_PROTOCOL, (stream, connection) => { void this.answerJoin(stream, connection) })
    await this.host.handle(LOGS_PROTOCOL, (stream, connection) => { void this.answerLogs(stream, connection) })
    await this.sync.start()
    this.host.addEventListener('connection:open', event => { this.onConnection(event.detail) })
    this.host.addEventListener('peer:disconnect', event => {
      this.sync.disconnect(event.detail.toString())
      this.identifiedPeers.delete(event.detail.toString())
    })
    this.host.addEventListener('peer:identify', event => {
      this.identifiedPeers.add(event.detail.peerId.toString())
      this.checkVersion(event.detail.peerId, event.detail.agentVersion)
    })
    this.setUpGossip()
    membership.onChange(() => { this.onMembershipChange() })
    await this.host.start()
    this.started = true
    this.awake.start()
    this.timers.push(setInterval(() => { void this.redial() }, REDIAL_MS), setInterval(() => { this.publishStatus() }, STATUS_INTERVAL_MS))
    for (const t of this.timers) t.unref()
    log('listening on %s', this.addresses().join(', '))
  }

  async stop (): Promise<void> {
    this.awake.stop()
    for (const t of this.timers) clearInterval(t)
    await this.sync?.stop()
    await this.host?.stop()
  }

  /**
   * A read barrier: asks every reachable active member what it holds now, then waits until this
   * replica holds all of it, so that a job or group acknowledged there is known here. Resolves
   * with the members that could not be asked; throws NotCaughtUpError after `timeoutMs`.
   */
  async catchUp (timeoutMs: number): Promise<{ unreachable: string[] }> {
    const signal = AbortSignal.timeout(timeoutMs)
    const connected = new Set(this.host.getPeers().map(p => p.toString()))
    const others = this.init.membership.activeIds().filter(p => p !== this.init.self)
    const unreachable: string[] = []
    const asked = await Promise.all(others.map(async peer => {
      if (!connected.has(peer)) {
        unreachable.push(peer)
        return undefined
      }
      void this.sync.connect(peer) // a session that ended while the connection stayed up would never cover anything
      return await this.heads.ask(peer, signal).then(frontier => ({ peer, frontier }), err => {
        log('cannot ask %s for its heads: %s', peer, (err as Error).message)
        unreachable.push(peer)
        return undefined
      })
    }))
    for (const item of asked) {
      if (item == null) continue
      while (!this.init.ledger.covers(item.frontier)) {
        if (signal.aborted) throw new NotCaughtUpError(`this node has not received everything member ${item.peer} holds within ${timeoutMs / 1000} s; try again`)
        await new Promise(resolve => setTimeout(resolve, 20))
      }
    }
    // covered in the documents, but perhaps not yet in the job table: a read would miss the job
    await this.init.ledger.applied()
    return { unreachable }
  }

  /** Resolves once every sync peer has this node's member facts (or when `signal` aborts). */
  async flushSync (signal: AbortSignal): Promise<void> {
    while (!this.sync.delivered(META_DOC) && !signal.aborted) await new Promise(resolve => setTimeout(resolve, 50))
  }

  addresses (): string[] {
    return this.host.getMultiaddrs().map(a => a.toString())
  }

  /**
   * Dials a member at an address it was given (`meshq connect`), for when neither side knows where
   * the other is now (both restarted on new ports while the other was down). Once connected, the
   * ledger sync brings each side the other's own record, with its new addresses, for later redials.
   * Throws UsageError (not an address), PeerNotFoundError (what answers there is not a member) or
   * PeerUnreachableError. Resolves with the member's peer id.
   */
  async connect (address: string): Promise<string> {
    const addr = parseAddrs([address])[0]
    if (addr == null) throw new UsageError(`not a multiaddr: '${address}' (expected e.g. /ip4/10.0.0.7/tcp/7746/p2p/12D3Koo...)`)
    const named = addr.getComponents().find(c => c.name === 'p2p')?.value
    if (named === this.init.self) throw new UsageError(`${address} is this node`)
    if (named != null && !this.init.membership.isMember(named)) throw new PeerNotFoundError(`${named} is not a member of this cluster`)
    let connection: Connection
    try {
      connection = await this.host.dial(addr, { signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS) })
    } catch (err) {
      throw new PeerUnreachableError(`cannot reach ${address}: ${(err as Error).message}`)
    }
    const peer = connection.remotePeer.toString()
    if (!this.init.membership.isMember(peer)) {
      await connection.close().catch(() => {})
      throw new PeerNotFoundError(`the node at ${address} (${peer}) is not a member of this cluster`)
    }
    this.backoff.delete(peer)
    return peer
  }

  /**
   * Presents an invite to the member that issued it and waits until the member list has arrived.
   * Throws InviteRefusedError (the inviter said no) or JoinFailedError (nobody reachable).
   */
  async join (token: JoinToken, signal: AbortSignal): Promise<void> {
    const failures: string[] = []
    for (const addr of token.addrs) {
      let stream: Stream
      try {
        stream = await this.host.dialProtocol(multiaddr(addr), JOIN_PROTOCOL, { signal })
      } catch (err) {
        failures.push(`${addr}: ${(err as Error).message}`)
        continue
      }
      const inviter = addr.split('/p2p/')[1]
      this.bootstrap = inviter
      let reply: { ok: boolean, error?: string }
      try {
        reply = await this.askToJoin(stream, token, signal)
      } catch (err) {
        failures.push(`${addr}: no answer to the join request: ${asError(err).message}`)
        continue
      } finally {
        await stream.close().catch(() => {})
      }
      if (!reply.ok) throw new InviteRefusedError(`the cluster refused this node: ${reply.error ?? 'no reason given'}`)
      if (inviter != null) await this.sync.connect(inviter)
      await this.waitForMembers(signal)
      return
    }
    throw new JoinFailedError(`cannot reach the inviting node (wrong cluster key, or it is down): ${failures.join('; ')}`)
  }

  private async askToJoin (stream: Stream, token: JoinToken, signal: AbortSignal): Promise<{ ok: boolean, error?: string }> {
    const lp = lpStream(stream, { maxDataLength: MAX_JOIN_MESSAGE })
    await lp.write(new TextEncoder().encode(JSON.stringify({ invite: token.invite, secret: token.secret, addrs: this.addresses() })), { signal })
    const reply = JSON.parse(new TextDecoder().decode((await lp.read({ signal })).subarray())) as { ok: boolean, error?: string }
    if (typeof reply?.ok !== 'boolean') throw new Error('malformed reply')
    return reply
  }

  /** Members as this node sees them, with connection state and load. */
  peers (self: NodeLoad): PeerView[] {
    const { membership } = this.init
    const now = this.init.clock.monotonic()
    const connected = new Set(this.host.getPeers().map(p => p.toString()))
    return membership.memberIds().map(id => {
      const isSelf = id === this.init.self
      const status = isSelf ? { ...self, peer: id, seen: now } : this.statuses.get(id)
      const fresh = status != null && now - status.seen < STATUS_STALE_MS
      const up = isSelf || (connected.has(id) && fresh)
      return {
        id: id as PeerIdString,
        addrs: isSelf ? this.addresses() : membership.addresses(id),
        self: isSelf,
        connected: isSelf || connected.has(id),
        state: !up ? 'unreachable' : status?.draining === true ? 'draining' : 'up',
        slots: status?.slots ?? membership.node(id)?.slots ?? 0,
        running: status?.running ?? 0,
        tags: status?.tags ?? membership.node(id)?.tags ?? [],
        memFree: status?.memFree
      }
    })
  }

  /**
   * The members that count as live for claims, with the load they last gossiped: those heard from
   * recently, and those still connected. A connected member that is slow to speak (a lossy link)
   * still counts, so that claims keep needing its vote; a dead link is closed by pings within 10 s.
   */
  liveStatuses (): NodeStatusGossip[] {
    const now = this.init.clock.monotonic()
    const connected = new Set(this.started ? this.host.getPeers().map(p => p.toString()) : [])
    return [...this.statuses.values()].filter(s => this.init.membership.isMember(s.peer) && (now - s.seen < STATUS_STALE_MS || connected.has(s.peer)))
  }


  private onConnection (connection: Connection): void {
    const peer = connection.remotePeer.toString()
    if (this.allowed(peer)) {
      void this.sync.connect(peer)
      return
    }
    // a key holder that is not a member may only join, and only for a moment
    setTimeout(() => {
      if (!this.allowed(peer)) {
        log('closing connection of non-member %s', peer)
        void this.host.hangUp(connection.remotePeer).catch(() => {})
      }
    }, JOIN_GRACE_MS).unref()
  }

  /** The version handshake: a peer of another protocol major version is told off once and refused. */
  private checkVersion (peer: PeerId, agent: string | undefined): void {
    const why = incompatibility(this.protocol, agent)
    if (why == null) return
    const id = peer.toString()
    if (!this.incompatible.has(id)) process.stderr.write(`meshq: refusing peer ${id}: ${why}\n`)
    this.incompatible.add(id)
    void this.host.hangUp(peer).catch(() => {})
  }

  /**
   * Resolves once `peer` has identified itself (and its version was checked), or after `ms`: a
   * join request may arrive before identify is done, and must not admit a node of another version.
   */
  private async identified (peer: string, ms: number): Promise<void> {
    if (this.identifiedPeers.has(peer)) return
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        this.host.removeEventListener('peer:identify', onIdentify)
        resolve()
      }
      const onIdentify = (event: CustomEvent<IdentifyResult>): void => { if (event.detail.peerId.toString() === peer) done() }
      const timer = setTimeout(done, ms)
      this.host.addEventListener('peer:identify', onIdentify)
    })
  }

  private onMembershipChange (): void {
    for (const peer of this.host.getPeers()) {
      const id = peer.toString()
      if (this.init.membership.isEvicted(id)) void this.host.hangUp(peer).catch(() => {})
      else if (this.allowed(id)) void this.sync.connect(id)
    }
  }

  private async answerJoin (stream: Stream, connection: Connection): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_JOIN_MESSAGE })
    const reply = async (body: unknown): Promise<void> => { await lp.write(new TextEncoder().encode(JSON.stringify(body))) }
    try {
      const request = JSON.parse(new TextDecoder().decode((await lp.read({ signal: AbortSignal.timeout(JOIN_GRACE_MS) })).subarray()))
      const { invite, secret, addrs } = request ?? {}
      if (typeof invite !== 'string' || typeof secret !== 'string' || !Array.isArray(addrs)) {
        throw new InviteRefusedError('malformed join request')
      }
      const peer = connection.remotePeer.toString()
      await this.identified(peer, JOIN_GRACE_MS)
      if (this.incompatible.has(peer)) throw new InviteRefusedError('this node speaks another meshq protocol major version')
      await this.init.membership.admit(peer, invite, secret, validAddrs(addrs))
      await reply({ ok: true })
      log('admitted %s', connection.remotePeer.toString())
    } catch (err) {
      log('refused join from %s: %s', connection.remotePeer.toString(), (err as Error).message)
      await reply({ ok: false, error: err instanceof InviteRefusedError ? err.message : 'join failed' }).catch(() => {})
    } finally {
      await stream.close().catch(() => {})
    }
  }

  /** The output of an attempt that ran on another node, streamed from it. */
  async * remoteLog (peer: string, request: LogRequest, signal: AbortSignal): AsyncIterable<Uint8Array> {
    let stream: Stream
    try {
      stream = await this.host.dialProtocol(peerIdFromString(peer), LOGS_PROTOCOL, { signal })
    } catch (err) {
      throw new PeerUnreachableError(`cannot fetch the output from ${peer}, which ran the job: ${(err as Error).message}`)
    }
    const lp = lpStream(stream, { maxDataLength: MAX_LOG_FRAME })
    try {
      await lp.write(new TextEncoder().encode(JSON.stringify(request)), { signal })
      for (;;) {
        const chunk = await lp.read({ signal })
        if (chunk.byteLength === 0) return // the end mark
        yield chunk.subarray()
      }
    } finally {
      stream.abort(new Error('done'))
    }
  }

  private async answerLogs (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const lp = lpStream(stream, { maxDataLength: 4096 })
    const done = new AbortController()
    stream.addEventListener('close', () => { done.abort() })
    try {
      const request = this.allowed(peer) ? parseLogRequest((await lp.read({ signal: AbortSignal.timeout(JOIN_GRACE_MS) })).subarray()) : undefined
      if (request == null) throw new Error('refused: not a member, or a malformed request')
      for await (const chunk of this.init.logs(request, done.signal)) {
        for (let at = 0; at < chunk.byteLength; at += MAX_LOG_FRAME) await lp.write(chunk.subarray(at, at + MAX_LOG_FRAME))
      }
      await lp.write(new Uint8Array(0))
      await stream.close()
    } catch (err) {
      log('logs for %s: %s', peer, (err as Error).message)
      stream.abort(err as Error)
    }
  }

  private async waitForMembers (signal: AbortSignal): Promise<void> {
    while (this.init.ledger.doc(META_DOC) == null || !this.init.membership.isMember(this.init.self)) {
      signal.throwIfAborted()
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }

  /**
   * Dials members this node is not connected to, all at once, with a per-peer backoff. A pass
   * whose dials are still waiting (up to 5 s each on a dead link) is not overlapped by the next.
   */
  private async redial (): Promise<void> {
    if (this.redialing) return
    this.redialing = true
    try {
      const connected = new Set(this.host.getPeers().map(p => p.toString()))
      const others = this.init.membership.memberIds().filter(peer => peer !== this.init.self)
      await Promise.all(others.map(async peer => {
        await this.redialPeer(peer, connected.has(peer)).catch(err => { log('redial of %s: %s', peer, (err as Error).message) })
      }))
    } finally {
      this.redialing = false
    }
  }

  private async redialPeer (peer: string, connected: boolean): Promise<void> {
    const now = this.init.clock.monotonic()
    if (connected) {
      this.backoff.delete(peer)
      void this.sync.connect(peer) // reopens a sync stream that ended while the connection stayed up
      return
    }
    const state = this.backoff.get(peer) ?? { next: 0, delay: REDIAL_MS }
    if (state.next > now) return
    const addrs = parseAddrs(this.init.membership.addresses(peer))
    if (addrs.length === 0) return
    try {
      await this.host.peerStore.merge(peerIdFromString(peer), { multiaddrs: addrs.map(a => a.decapsulateCode(421)) })
      await this.host.dial(peerIdFromString(peer), { signal: AbortSignal.timeout(5000) })
      this.backoff.delete(peer)
    } catch (err) {
      log('dial %s failed: %s', peer, (err as Error).message)
      this.backoff.set(peer, { next: this.init.clock.monotonic() + state.delay, delay: Math.min(state.delay * 2, MAX_REDIAL_BACKOFF_MS) })
    }
  }

  /**
   * Two topics: each node's load, and claim batches. Every message is validated before gossipsub
   * delivers or forwards it: the schema; that its author is a member speaking for itself; that the
   * peer it came from is a member (a key holder that is not one must not relay members' recorded
   * messages); and that it is not a replay of an earlier message of its author (`ReplayGuard`).
   */
  private setUpGossip (): void {
    const { pubsub } = this.host.services
    const { membership } = this.init
    const topics: Record<string, (data: Uint8Array) => { peer: string, stamp?: ReplayStamp } | undefined> = {
      [this.statusTopic]: data => { const s = parseStatus(data); return s && { peer: s.peer, stamp: stampOf(s) } },
      [this.claimTopic]: data => { const b = decodeBatch(data); return b && { peer: b.peer, stamp: b } }
    }
    for (const [topic, parse] of Object.entries(topics)) {
      const replays = new ReplayGuard()
      pubsub.subscribe(topic)
      pubsub.topicValidators.set(topic, (from: PeerId, message) => {
        const body = parse(message.data)
        const author = message.type === 'signed' ? message.from.toString() : undefined
        if (body == null || author !== body.peer || !membership.isMember(author) || !membership.isMember(from.toString())) return TopicValidatorResult.Reject
        return replays.fresh(author, body.stamp) ? TopicValidatorResult.Accept : TopicValidatorResult.Ignore
      })
    }
    pubsub.addEventListener('message', event => {
      const { topic, data } = event.detail
      const now = this.init.clock.monotonic()
      if (topic === this.statusTopic) {
        const status = parseStatus(data)
        if (status != null) {
          this.statuses.set(status.peer, { ...status, seen: now })
          this.heard.set(status.peer, this.awake.now())
        }
      } else if (topic === this.claimTopic) {
        const batch = decodeBatch(data)
        if (batch != null) {
          this.heard.set(batch.peer, this.awake.now())
          this.claimHandler?.(batch)
        }
      }
    })
  }

  private publishStatus (): void {
    const status: NodeStatusGossip = { ...this.init.status(), peer: this.init.self, ...this.stamper.next() }
    void this.host.services.pubsub.publish(this.statusTopic, new TextEncoder().encode(JSON.stringify(status))).catch(err => {
      log('status publish failed: %s', (err as Error).message)
    })
  }
}

/**
 * A clock of the time this node was awake: it advances by at most two ticks per tick, so a stall
 * of the event loop (CPU starvation, GC, SIGSTOP) does not count as time in which others were
 * silent. Messages that arrived during the stall are read before silence is judged again.
 */
export class AwakeClock {
  private elapsed = 0
  private last: number
  private timer?: NodeJS.Timeout

  constructor (private readonly clock: Clock, private readonly tickMs: number) {
    this.last = clock.monotonic()
  }

  start (): void {
    this.last = this.clock.monotonic()
    this.timer = setInterval(() => { this.tick() }, this.tickMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  now (): number {
    return this.elapsed + Math.min(this.clock.monotonic() - this.last, this.tickMs)
  }

  private tick (): void {
    const at = this.clock.monotonic()
    this.elapsed += Math.min(at - this.last, 2 * this.tickMs)
    this.last = at
  }
}

/**
 * libp2p's error for addresses it could not listen on spans lines and names its own options; a
 * user needs the address, the reason and what to do.
 */
export function listenError (err: Error): Error {
  const failures = [...err.message.matchAll(/^\s*(\/\S+): \w*Error: (?:listen )?(\w+)/gm)].map(([, addr, code]) => ({ addr, code }))
  if (failures.length === 0) return err
  const reasons: Record<string, string> = {
    EADDRINUSE: 'the address is in use (another meshq node, or another program, listens there)',
    EADDRNOTAVAIL: 'this host has no such address',
    EACCES: 'no permission (ports below 1024 need root)'
  }
  const what = failures.map(({ addr, code }) => `${addr}: ${reasons[code] ?? code}`).join('; ')
  return new ListenError(`cannot listen on ${what}; choose other addresses with --listen, e.g. --listen /ip4/0.0.0.0/tcp/7747`)
}
