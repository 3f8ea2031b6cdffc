/**
 * What this node hears of the other members: the load each last gossiped, and when each last spoke
 * (status or claims), measured on an `AwakeClock`. It answers `meshq peers`, which members count as
 * live for claims, and whether a node's only peer has gone silent.
 */
import type { Clock } from '../clock.js'
import type { PeerIdString, PeerView } from '../types.js'
import { AwakeClock } from './awake-clock.js'
import type { Membership } from './membership.js'
import type { NodeLoad, NodeStatusGossip } from './status-gossip.js'

/** How often the awake clock advances (see `AwakeClock`). */
const AWAKE_TICK_MS = 250
/** A member not heard from for this long is shown as unreachable. */
const STATUS_STALE_MS = 10_000

export interface LivenessInit {
  self: string
  membership: Membership
  clock: Clock
  /** The peers connected now (none before the host starts). */
  connected: () => Set<string>
  /** This node's own addresses. */
  addresses: () => string[]
}

export class Liveness {
  private readonly init: LivenessInit
  private readonly statuses = new Map<string, NodeStatusGossip & { seen: number }>()
  /** Awake time (see `awake`) each member's last gossip (status or claims) arrived. */
  private readonly heard = new Map<string, number>()
  /** Time this node was awake to hear others: how silence is measured. */
  private readonly awake: AwakeClock

  constructor (init: LivenessInit) {
    this.init = init
    this.awake = new AwakeClock(init.clock, AWAKE_TICK_MS)
  }

  start (): void {
    this.awake.start()
  }

  stop (): void {
    this.awake.stop()
  }

  /** A member's gossip arrived (any topic). */
  heardFrom (peer: string): void {
    this.heard.set(peer, this.awake.now())
  }

  /** A member's status arrived. */
  statusOf (status: NodeStatusGossip): void {
    this.statuses.set(status.peer, { ...status, seen: this.init.clock.monotonic() })
  }

  /**
   * Whether every other active member has been silent (no gossip from it) for `windowMs` of this
   * node's awake time. A member never heard since this start counts from the start.
   */
  othersSilentFor (windowMs: number): boolean {
    const now = this.awake.now()
    return this.init.membership.activeIds().every(p => p === this.init.self || now - (this.heard.get(p) ?? 0) >= windowMs)
  }

  /**
   * The members that count as live for claims, with the load they last gossiped: those heard from
   * recently, and those still connected. A connected member that is slow to speak (a lossy link)
   * still counts, so that claims keep needing its vote; a dead link is closed by pings within 15 s
   * (`PING_INTERVAL_MS` and libp2p's ping timeout, at most 10 s).
   */
  liveStatuses (): NodeStatusGossip[] {
    const now = this.init.clock.monotonic()
    const connected = this.init.connected()
    return [...this.statuses.values()]
      .filter(s => this.init.membership.isMember(s.peer) && (now - s.seen < STATUS_STALE_MS || connected.has(s.peer)))
  }

  /** Members as this node sees them, with connection state and load. */
  peers (self: NodeLoad): PeerView[] {
    const { membership } = this.init
    const now = this.init.clock.monotonic()
    const connected = this.init.connected()
    return membership.memberIds().map(id => {
      const isSelf = id === this.init.self
      const status = isSelf ? { ...self, peer: id, seen: now } : this.statuses.get(id)
      const fresh = status != null && now - status.seen < STATUS_STALE_MS
      const up = isSelf || (connected.has(id) && fresh)
      return {
        id: id as PeerIdString,
        addrs: isSelf ? this.init.addresses() : membership.addresses(id),
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
}
