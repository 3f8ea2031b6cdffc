/**
 * Dialling members: every `REDIAL_MS` the members this node is not connected to, at the addresses
 * the ledger holds for them, with a per-peer backoff; and `meshq connect`, at an address given.
 */
import createDebug from 'debug'
import type { Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { PeerNotFoundError, PeerUnreachableError, UsageError } from '../errors.js'
import type { Clock } from '../clock.js'
import { parseAddrs } from './addrs.js'
import type { Membership } from './membership.js'
import type { MeshqLibp2p } from './p2p.js'
import type { SyncService } from './sync.js'

const log = createDebug('meshq:mesh')

const REDIAL_MS = 2000
/** Also bounds how long two members stay apart after a partition heals. */
const MAX_REDIAL_BACKOFF_MS = 10_000
/** How long one redial may take. */
const DIAL_TIMEOUT_MS = 5000
/** How long `meshq connect` tries to reach the address it was given. */
const CONNECT_TIMEOUT_MS = 10_000
/** The multiaddr code of `/p2p/<peer id>`, which the peer store keeps apart from the addresses. */
const P2P_CODE = 421

export interface DialerInit {
  self: string
  host: MeshqLibp2p
  membership: Membership
  sync: SyncService
  clock: Clock
}

export class Dialer {
  private readonly init: DialerInit
  private readonly backoff = new Map<string, { next: number, delay: number }>()
  private timer?: NodeJS.Timeout
  private redialing = false

  constructor (init: DialerInit) {
    this.init = init
  }

  start (): void {
    this.timer = setInterval(() => { void this.redial() }, REDIAL_MS)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  /**
   * Dials a member at an address it was given (`meshq connect`), for when neither side knows where
   * the other is now (both restarted on new ports while the other was down). Once connected, the
   * ledger sync brings each side the other's own record, with its new addresses, for later redials.
   * Throws UsageError (not an address), PeerNotFoundError (what answers there is not a member) or
   * PeerUnreachableError. Resolves with the member's peer id.
   */
  async connect (address: string): Promise<string> {
    const { membership, self } = this.init
    const addr = parseAddrs([address])[0]
    if (addr == null) throw new UsageError(`not a multiaddr: '${address}' (expected e.g. /ip4/10.0.0.7/tcp/7746/p2p/12D3Koo...)`)
    const named = addr.getComponents().find(c => c.name === 'p2p')?.value
    if (named === self) throw new UsageError(`${address} is this node`)
    if (named != null && !membership.isMember(named)) throw new PeerNotFoundError(`${named} is not a member of this cluster`)
    let connection: Connection
    try {
      connection = await this.init.host.dial(addr, { signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS) })
    } catch (err) {
      throw new PeerUnreachableError(`cannot reach ${address}: ${(err as Error).message}`)
    }
    const peer = connection.remotePeer.toString()
    if (!membership.isMember(peer)) {
      await connection.close().catch(() => {})
      throw new PeerNotFoundError(`the node at ${address} (${peer}) is not a member of this cluster`)
    }
    this.backoff.delete(peer)
    return peer
  }

  /**
   * Dials members this node is not connected to, all at once, with a per-peer backoff. A pass
   * whose dials are still waiting (up to 5 s each on a dead link) is not overlapped by the next.
   */
  private async redial (): Promise<void> {
    if (this.redialing) return
    this.redialing = true
    try {
      const connected = new Set(this.init.host.getPeers().map(p => p.toString()))
      const others = this.init.membership.memberIds().filter(peer => peer !== this.init.self)
      await Promise.all(others.map(async peer => {
        await this.redialPeer(peer, connected.has(peer)).catch(err => { log('redial of %s: %s', peer, (err as Error).message) })
      }))
    } finally {
      this.redialing = false
    }
  }

  private async redialPeer (peer: string, connected: boolean): Promise<void> {
    const { host, clock } = this.init
    if (connected) {
      this.backoff.delete(peer)
      void this.init.sync.connect(peer) // reopens a sync stream that ended while the connection stayed up
      return
    }
    const state = this.backoff.get(peer) ?? { next: 0, delay: REDIAL_MS }
    if (state.next > clock.monotonic()) return
    const addrs = parseAddrs(this.init.membership.addresses(peer))
    if (addrs.length === 0) return
    try {
      await host.peerStore.merge(peerIdFromString(peer), { multiaddrs: addrs.map(a => a.decapsulateCode(P2P_CODE)) })
      await host.dial(peerIdFromString(peer), { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
      this.backoff.delete(peer)
    } catch (err) {
      log('dial %s failed: %s', peer, (err as Error).message)
      this.backoff.set(peer, { next: clock.monotonic() + state.delay, delay: Math.min(state.delay * 2, MAX_REDIAL_BACKOFF_MS) })
    }
  }
}
