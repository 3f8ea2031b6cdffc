/**
 * The membership gate: which connected peers may stay and use the meshq protocols. Members may
 * (and the member this node joins through, until the member list arrives); a key holder that is
 * not one may only join, and is hung up after `JOIN_GRACE_MS`; evicted peers and peers of another
 * protocol major version (the version handshake) are refused.
 */
import createDebug from 'debug'
import type { Connection, IdentifyResult, PeerId } from '@libp2p/interface'
import { incompatibility, localProtocol, parseAgent } from './handshake.js'
import type { Membership } from './membership.js'
import type { MeshqLibp2p } from './p2p.js'
import type { SyncService } from './sync.js'

const log = createDebug('meshq:mesh')

/** How long a peer with the key but no membership may stay connected (to join). */
export const JOIN_GRACE_MS = 5000

export interface GateInit {
  self: string
  membership: Membership
}

export class MembershipGate {
  /** The member this node joined through, trusted until the member list arrives. */
  bootstrap?: string
  readonly protocol = localProtocol()
  private readonly init: GateInit
  /** Peers refused by the version handshake. */
  private readonly incompatible = new Set<string>()
  /** The protocol minor version each identified peer of this major version announced. */
  private readonly minors = new Map<string, number>()
  /** Peers that have identified themselves (so their version is checked). */
  private readonly identifiedPeers = new Set<string>()
  private host?: MeshqLibp2p

  constructor (init: GateInit) {
    this.init = init
  }

  /** Whether a peer may use the meshq protocols. */
  allowed (peer: string): boolean {
    return peer === this.init.self || this.init.membership.isMember(peer) || peer === this.bootstrap
  }

  /** Whether a peer may connect at all: the host's connection gater asks. */
  admits (peer: PeerId): boolean {
    const id = peer.toString()
    return !this.init.membership.isEvicted(id) && !this.incompatible.has(id)
  }

  isIncompatible (peer: string): boolean {
    return this.incompatible.has(peer)
  }

  /** Starts watching the host's connections, and keeps a sync session with every allowed peer. */
  watch (host: MeshqLibp2p, sync: SyncService): void {
    this.host = host
    host.addEventListener('connection:open', event => { this.onConnection(event.detail, sync) })
    host.addEventListener('peer:disconnect', event => {
      sync.disconnect(event.detail.toString())
      this.identifiedPeers.delete(event.detail.toString())
    })
    host.addEventListener('peer:identify', event => {
      this.identifiedPeers.add(event.detail.peerId.toString())
      this.checkVersion(event.detail.peerId, event.detail.agentVersion)
    })
    this.init.membership.onChange(() => { this.onMembershipChange(host, sync) })
  }

  /**
   * Resolves once `peer` has identified itself (and its version was checked), or after `ms`: a
   * join request may arrive before identify is done, and must not admit a node of another version.
   */
  async identified (peer: string, ms: number): Promise<void> {
    const host = this.host
    if (this.identifiedPeers.has(peer) || host == null) return
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        host.removeEventListener('peer:identify', onIdentify)
        resolve()
      }
      const onIdentify = (event: CustomEvent<IdentifyResult>): void => { if (event.detail.peerId.toString() === peer) done() }
      const timer = setTimeout(done, ms)
      host.addEventListener('peer:identify', onIdentify)
    })
  }

  private onConnection (connection: Connection, sync: SyncService): void {
    const peer = connection.remotePeer.toString()
    if (this.allowed(peer)) {
      void sync.connect(peer)
      return
    }
    // a key holder that is not a member may only join, and only for a moment
    setTimeout(() => {
      if (!this.allowed(peer)) {
        log('closing connection of non-member %s', peer)
        void this.host?.hangUp(connection.remotePeer).catch(() => {})
      }
    }, JOIN_GRACE_MS).unref()
  }

  /** Peers among `peers` that announced an older protocol minor version than `minor`, with theirs. */
  olderThan (minor: number, peers: Iterable<string>): Array<{ peer: string, minor: number }> {
    return [...peers].flatMap(peer => {
      const theirs = this.minors.get(peer)
      return theirs != null && theirs < minor ? [{ peer, minor: theirs }] : []
    })
  }

  /** The version handshake: a peer of another protocol major version is told off once and refused. */
  private checkVersion (peer: PeerId, agent: string | undefined): void {
    const why = incompatibility(this.protocol, agent)
    const minor = parseAgent(agent)?.protocol.minor
    if (why == null && minor != null) this.minors.set(peer.toString(), minor)
    if (why == null) return
    const id = peer.toString()
    if (!this.incompatible.has(id)) process.stderr.write(`meshq: refusing peer ${id}: ${why}\n`)
    this.incompatible.add(id)
    void this.host?.hangUp(peer).catch(() => {})
  }

  private onMembershipChange (host: MeshqLibp2p, sync: SyncService): void {
    for (const peer of host.getPeers()) {
      const id = peer.toString()
      if (this.init.membership.isEvicted(id)) void host.hangUp(peer).catch(() => {})
      else if (this.allowed(id)) void sync.connect(id)
    }
  }
}
