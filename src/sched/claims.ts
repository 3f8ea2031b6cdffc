import { createHash, randomBytes } from 'node:crypto'
import createDebug from 'debug'
import type { Attempt, JobId, JobSpec } from '../types.js'
import type { Clock } from '../clock.js'

const log = createDebug('meshq:claims')

/** Default claim window: about twice the p99 gossip delay measured on a loaded machine. */
export const DEFAULT_CLAIM_WINDOW_MS = 150
/** How often a batch of claims and renewals goes out at most. */
export const BATCH_INTERVAL_MS = 25
const MAX_BATCH_BYTES = 256 * 1024

/** One gossip message: everything a node claims, renews and releases in one tick. */
export interface ClaimBatch {
  v: 1
  peer: string
  /** Random per process start: with `seq`, lets receivers drop replays. */
  boot: string
  seq: number
  claims: Array<[JobId, number]>
  /** [job, epoch, ttrMs]. */
  renews: Array<[JobId, number, number]>
  releases: Array<[JobId, number]>
}

/** How batches travel: gossipsub in a node, a plain bus in tests. */
export interface ClaimTransport {
  publish: (batch: ClaimBatch) => void
  subscribe: (handler: (batch: ClaimBatch) => void) => void
}

/** What the claimer knows of the other nodes: who is alive and could run a job. */
export interface PeerLoad {
  peer: string
  slots: number
  running: number
  draining: boolean
  tags: string[]
}

export interface Lease {
  peer: string
  epoch: number
  /** Monotonic ms after which the lease is over unless renewed. */
  expiresAt: number
}

export interface ClaimsInit {
  self: string
  clock: Clock
  transport: ClaimTransport
  windowMs?: number
  /** Live peers other than this node. */
  peers: () => PeerLoad[]
  /** Called with jobs whose lease just expired, so their state is derived again. */
  onExpired: (jobs: JobId[]) => void
  /** Called when another node wins a job this node runs: this node must stop its copy. */
  onPreempted: (job: JobId, epoch: number) => void
}

/** The deterministic tie-break of two claims of one epoch: the lower hash of (job, peer) wins. */
export function claimRank (job: string, peer: string): string {
  return createHash('sha256').update(`${job}\n${peer}`).digest('hex')
}

/** Whether claim a beats claim b. */
export function beats (job: string, a: { peer: string, epoch: number }, b: { peer: string, epoch: number }): boolean {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch
  return claimRank(job, a.peer) < claimRank(job, b.peer)
}

export function validBatch (value: unknown): value is ClaimBatch {
  const b = value as ClaimBatch
  const pairs = (list: unknown, length: number): boolean => Array.isArray(list) && list.length <= 10_000 &&
    list.every(item => Array.isArray(item) && item.length === length && typeof item[0] === 'string' && item.slice(1).every(n => Number.isSafeInteger(n) && n >= 0))
  return b != null && typeof b === 'object' && b.v === 1 && typeof b.peer === 'string' && typeof b.boot === 'string' &&
    Number.isSafeInteger(b.seq) && pairs(b.claims, 2) && pairs(b.renews, 3) && pairs(b.releases, 2)
}

export function decodeBatch (data: Uint8Array): ClaimBatch | undefined {
  if (data.length > MAX_BATCH_BYTES) return undefined
  try {
    const value = JSON.parse(new TextDecoder().decode(data))
    return validBatch(value) ? value : undefined
  } catch {
    return undefined
  }
}

/**
 * Leases on jobs, arbitrated over gossip. A node claims a job with an epoch one above the last,
 * waits a claim window for rival claims, and the deterministic winner (higher epoch, then lower
 * hash) runs it and renews the lease every TTR/3. Every node keeps the leases it hears of, timed
 * on its own monotonic clock, and treats a job whose lease lapsed as claimable again.
 */
export class Claims {
  private readonly init: ClaimsInit
  private readonly windowMs: number
  private readonly boot = randomBytes(6).toString('hex')
  private seq = 0
  private readonly leases = new Map<JobId, Lease>()
  /** Claims of this node in their window: the rivals heard so far. */
  private readonly pending = new Map<JobId, { epoch: number, lost: boolean }>()
  /** Jobs this node holds, with their TTR, for renewals. */
  private readonly held = new Map<JobId, { epoch: number, ttrMs: number, renewedAt: number }>()
  private readonly lastSeq = new Map<string, { boot: string, seq: number }>()
  private outbox: Omit<ClaimBatch, 'v' | 'peer' | 'boot' | 'seq'> = { claims: [], renews: [], releases: [] }
  private timer?: NodeJS.Timeout

  constructor (init: ClaimsInit) {
    this.init = init
    this.windowMs = init.windowMs ?? DEFAULT_CLAIM_WINDOW_MS
    init.transport.subscribe(batch => { this.receive(batch) })
  }

  start (): void {
    this.timer = setInterval(() => { this.tick() }, BATCH_INTERVAL_MS)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  /** The live lease another node holds on a job, if any. */
  leaseOf (job: JobId): Lease | undefined {
    const lease = this.leases.get(job)
    return lease != null && lease.expiresAt > this.init.clock.monotonic() ? lease : undefined
  }

  /** Whether a remote attempt's lease is still held, as far as this node has heard. */
  alive (attempt: Attempt, ttrMs: number): boolean {
    const lease = this.leases.get(attempt.job)
    const now = this.init.clock.monotonic()
    if (lease == null || lease.epoch < attempt.epoch) {
      // first news of this attempt: it gets one TTR from now to show a renewal
      this.leases.set(attempt.job, { peer: attempt.node, epoch: attempt.epoch, expiresAt: now + ttrMs })
      return true
    }
    if (lease.epoch > attempt.epoch || lease.peer !== attempt.node) return false
    return lease.expiresAt > now
  }

  /**
   * How long this node should wait before claiming a job: 0 if it ranks first among the nodes
   * that could run it (rendezvous hashing), a window per rank otherwise, so that usually one node tries.
   */
  claimDelay (spec: JobSpec): number {
    const candidates = this.init.peers().filter(p => !p.draining && p.slots - p.running >= spec.cores && spec.tags.every(t => p.tags.includes(t)))
    const mine = claimRank(spec.id, this.init.self)
    const rank = candidates.filter(p => claimRank(spec.id, p.peer) < mine).length
    return rank * this.windowMs
  }

  /** Whether there is anyone to compete with: a node alone needs no claim window. */
  alone (): boolean {
    return this.init.peers().length === 0
  }

  /** Claims a job at an epoch; resolves true if this node won it (and now holds the lease). */
  async claim (job: JobId, epoch: number, ttrMs: number): Promise<boolean> {
    if (this.alone()) {
      this.hold(job, epoch, ttrMs)
      return true
    }
    this.pending.set(job, { epoch, lost: false })
    this.outbox.claims.push([job, epoch])
    this.flush()
    await new Promise(resolve => setTimeout(resolve, this.windowMs))
    const outcome = this.pending.get(job)
    this.pending.delete(job)
    const rival = this.leaseOf(job)
    const won = outcome?.lost !== true && (rival == null || beats(job, { peer: this.init.self, epoch }, rival))
    if (won) this.hold(job, epoch, ttrMs)
    log('%s claim of %s at epoch %d', won ? 'won' : 'lost', job, epoch)
    return won
  }

  /** This node no longer runs the job. */
  release (job: JobId): void {
    const held = this.held.get(job)
    if (held == null) return
    this.held.delete(job)
    this.outbox.releases.push([job, held.epoch])
  }

  private hold (job: JobId, epoch: number, ttrMs: number): void {
    this.held.set(job, { epoch, ttrMs, renewedAt: this.init.clock.monotonic() })
    this.leases.set(job, { peer: this.init.self, epoch, expiresAt: Infinity })
    this.outbox.renews.push([job, epoch, ttrMs])
  }

  private tick (): void {
    const now = this.init.clock.monotonic()
    for (const [job, held] of this.held) {
      if (now - held.renewedAt >= held.ttrMs / 3) {
        held.renewedAt = now
        this.outbox.renews.push([job, held.epoch, held.ttrMs])
      }
    }
    this.flush()
    const expired: JobId[] = []
    for (const [job, lease] of this.leases) {
      if (lease.expiresAt <= now) {
        this.leases.delete(job)
        expired.push(job)
      }
    }
    if (expired.length > 0) this.init.onExpired(expired)
  }

  private flush (): void {
    const { claims, renews, releases } = this.outbox
    if (claims.length + renews.length + releases.length === 0) return
    this.outbox = { claims: [], renews: [], releases: [] }
    this.init.transport.publish({ v: 1, peer: this.init.self, boot: this.boot, seq: ++this.seq, claims, renews, releases })
  }

  private receive (batch: ClaimBatch): void {
    if (batch.peer === this.init.self || this.isReplay(batch)) return
    const now = this.init.clock.monotonic()
    for (const [job, epoch, ttrMs] of batch.renews) this.observe(job, { peer: batch.peer, epoch, expiresAt: now + ttrMs })
    for (const [job, epoch] of batch.claims) {
      // a claim holds the job for one claim window plus slack; the winner's renewal follows
      this.observe(job, { peer: batch.peer, epoch, expiresAt: now + 4 * this.windowMs + 1000 })
    }
    for (const [job, epoch] of batch.releases) {
      const lease = this.leases.get(job)
      if (lease?.peer === batch.peer && lease.epoch === epoch) this.leases.delete(job)
    }
  }

  /** Takes in a rival's claim or renewal: it may beat a claim in its window or a job this node runs. */
  private observe (job: JobId, rival: Lease): void {
    const current = this.leases.get(job)
    if (current != null && current.peer !== rival.peer && !beats(job, rival, current)) return
    if (current?.peer === rival.peer && current.epoch > rival.epoch) return
    this.leases.set(job, rival)
    const pending = this.pending.get(job)
    if (pending != null && beats(job, rival, { peer: this.init.self, epoch: pending.epoch })) pending.lost = true
    const held = this.held.get(job)
    if (held != null && beats(job, rival, { peer: this.init.self, epoch: held.epoch })) {
      this.held.delete(job)
      this.init.onPreempted(job, held.epoch)
    }
  }

  private isReplay (batch: ClaimBatch): boolean {
    const last = this.lastSeq.get(batch.peer)
    if (last != null && last.boot === batch.boot && batch.seq <= last.seq) return true
    this.lastSeq.set(batch.peer, { boot: batch.boot, seq: batch.seq })
    return false
  }
}
