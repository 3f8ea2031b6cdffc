/**
 * The status gossip (`meshq/<cluster>/status/1`): each node's load, published when it changes and
 * as a keep-alive (see `StatusBeacon`), and how a received message is read.
 */
import { randomBytes } from 'node:crypto'
import type { Clock } from '../clock.js'
import type { ReplayStamp } from './replay.js'
import type { GossipChannel, GossipCodec } from './topics.js'

export const MAX_STATUS_BYTES = 4096

/** What a node says about itself. */
export interface NodeLoad {
  slots: number
  running: number
  draining: boolean
  tags: string[]
  /** Bytes of memory free for jobs' `--mem` (protocol 2.1; absent from older nodes). */
  memFree?: number
}

/** Where a status message stands in its author's sequence (protocol 2.1; absent from older nodes). */
export type Stamp = Required<ReplayStamp>

export interface NodeStatusGossip extends NodeLoad, Partial<Stamp> {
  peer: string
}

const count = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0

export function parseStatus (data: Uint8Array): NodeStatusGossip | undefined {
  if (data.length > MAX_STATUS_BYTES) return undefined
  try {
    const s = JSON.parse(new TextDecoder().decode(data))
    const valid = typeof s?.peer === 'string' && Number.isInteger(s.slots) && Number.isInteger(s.running) &&
      typeof s.draining === 'boolean' && Array.isArray(s.tags) && s.tags.every((t: unknown) => typeof t === 'string') &&
      (s.memFree === undefined || count(s.memFree)) && validStamp(s)
    if (!valid) return undefined
    const { peer, slots, running, draining, tags, memFree, boot, seq, at } = s
    return { peer, slots, running, draining, tags, memFree, boot, seq, at }
  } catch {
    return undefined
  }
}

/** A stamp is all three fields or none (a node of protocol 2.0). */
function validStamp (s: Partial<Record<keyof Stamp, unknown>>): boolean {
  if (s.boot === undefined && s.seq === undefined && s.at === undefined) return true
  return typeof s.boot === 'string' && s.boot.length <= 64 && count(s.seq) && count(s.at)
}

/** A status message's stamp, if it has one. */
export const stampOf = (s: NodeStatusGossip): Stamp | undefined =>
  s.boot === undefined ? undefined : { boot: s.boot, seq: s.seq as number, at: s.at as number }

/** Stamps this node's own status messages. */
export class StatusStamper {
  private seq = 0
  constructor (private readonly boot: string, private readonly now: () => number) {}

  next (): Stamp {
    return { boot: this.boot, seq: ++this.seq, at: this.now() }
  }
}

/** How status messages are read and checked on their topic. */
export const statusCodec: GossipCodec<NodeStatusGossip> = { decode: parseStatus, author: s => s.peer, stamp: stampOf }

/** How often a node looks at its load; also the shortest time between two of its status messages. */
export const STATUS_INTERVAL_MS = 1000
/**
 * How often a node of a cluster of more than `FAST_STATUS_MEMBERS` active members publishes its
 * load when nothing in it changed (every third look): three keep-alives, each sent to every peer
 * directly and relayed by the mesh, within the 10 s after which a member is shown unreachable and
 * counts as live for claims only while connected (`STATUS_STALE_MS` in liveness.ts).
 */
export const STATUS_KEEPALIVE_MS = 3000
/**
 * Up to this many active members a node publishes its status every second, changed or not: in a
 * two-member cluster, status is how a node hears that its peer is alive within the alone window
 * (`aloneWindowMs`: half the TTR, at least 1 s). Three, not two: member lists change one member at a
 * time, so a node that counts two members has a peer that counts two or three, and both send
 * every second.
 */
export const FAST_STATUS_MEMBERS = 3

const sameLoad = (a: NodeLoad, b: NodeLoad): boolean =>
  a.slots === b.slots && a.running === b.running && a.draining === b.draining &&
  a.tags.length === b.tags.length && a.tags.every((t, i) => t === b.tags[i])

/**
 * Publishes this node's load, stamped (see `ReplayGuard`). It looks every `STATUS_INTERVAL_MS`
 * and publishes every time in a cluster of up to `FAST_STATUS_MEMBERS` active members; in a larger
 * one only when its slots, running count, draining flag or tags changed, when the member count
 * changed (a new member hears everyone within a second), and otherwise every `STATUS_KEEPALIVE_MS`.
 * Free memory alone goes out with the next message: it drifts all the time, and the others only
 * show it (the node that runs a job checks its own).
 */
export class StatusBeacon {
  private readonly stamper: StatusStamper
  private timer?: NodeJS.Timeout
  private last?: { load: NodeLoad, members: number, at: number }

  constructor (
    private readonly self: string,
    private readonly load: () => NodeLoad,
    private readonly channel: GossipChannel<NodeStatusGossip>,
    private readonly clock: Clock,
    /** The active members of the cluster, this node included. */
    private readonly members: () => number
  ) {
    this.stamper = new StatusStamper(randomBytes(6).toString('hex'), () => clock.now())
  }

  start (): void {
    this.timer = setInterval(() => { this.check() }, STATUS_INTERVAL_MS)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  /** Publishes the load if it is due (see the class); runs every `STATUS_INTERVAL_MS`. */
  check (): void {
    const load = this.load()
    const members = this.members()
    const at = this.clock.monotonic()
    const { last } = this
    const due = last == null || members <= FAST_STATUS_MEMBERS || members !== last.members ||
      !sameLoad(load, last.load) || at - last.at >= STATUS_KEEPALIVE_MS - STATUS_INTERVAL_MS / 2 // a look may come early
    if (!due) return
    this.last = { load, members, at }
    this.channel.publish({ ...load, peer: this.self, ...this.stamper.next() })
  }
}
