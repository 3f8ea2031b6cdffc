/**
 * The status gossip (`meshq/<cluster>/status/1`): each node's load, published every second, and
 * how a received message is read.
 */
import { randomBytes } from 'node:crypto'
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

const STATUS_INTERVAL_MS = 1000

/** Publishes this node's load every `STATUS_INTERVAL_MS`, stamped (see `ReplayGuard`). */
export class StatusBeacon {
  private readonly stamper: StatusStamper
  private timer?: NodeJS.Timeout

  constructor (
    private readonly self: string,
    private readonly load: () => NodeLoad,
    private readonly channel: GossipChannel<NodeStatusGossip>,
    now: () => number
  ) {
    this.stamper = new StatusStamper(randomBytes(6).toString('hex'), now)
  }

  start (): void {
    this.timer = setInterval(() => { this.publish() }, STATUS_INTERVAL_MS)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  private publish (): void {
    this.channel.publish({ ...this.load(), peer: this.self, ...this.stamper.next() })
  }
}
