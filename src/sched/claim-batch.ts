/**
 * The claims wire format: one gossip message per node per tick, and how a received one is
 * checked. What the entries mean is in claims.ts and docs/protocol.md.
 */
import type { JobId } from '../types.js'

export const MAX_BATCH_BYTES = 256 * 1024
/** Entries per list in one batch: keeps a batch well under MAX_BATCH_BYTES. */
export const MAX_BATCH_ENTRIES = 1000

/** One gossip message: everything a node claims, renews and releases in one tick. */
export interface ClaimBatch {
  v: 2
  peer: string
  /** Random per process start: with `seq`, lets receivers drop replays. */
  boot: string
  seq: number
  /** [job, epoch, ttrMs]: the author claims this attempt; a vote for it bars the job for ttrMs. */
  claims: Array<[JobId, number, number]>
  /** [job, epoch, ttrMs]. */
  renews: Array<[JobId, number, number]>
  releases: Array<[JobId, number]>
  /** [job, epoch]: the author gave up its claim of that attempt (it did not win): votes for it are void. */
  withdraws: Array<[JobId, number]>
  /**
   * [job, epoch, candidate]: this node does not back that claim now (it knows the job held, done
   * or barred): the claimant gives up at once when too few members are left to make a quorum.
   */
  refusals: Array<[JobId, number, string]>
  /** [job, epoch, candidate]: this node's one vote for a claim of that job and epoch. */
  votes: Array<[JobId, number, string]>
  /** [peer, boot, seq]: batches with renewals this node received from that peer, so that a holder knows its renewals arrive. */
  acks: Array<[string, string, number]>
}

/** How batches travel: gossipsub in a node, a plain bus in tests. */
export interface ClaimTransport {
  publish: (batch: ClaimBatch) => void
  subscribe: (handler: (batch: ClaimBatch) => void) => void
}

export function validBatch (value: unknown): value is ClaimBatch {
  const b = value as ClaimBatch
  const count = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0
  const text = (v: unknown): boolean => typeof v === 'string'
  const tuples = (list: unknown, ...checks: Array<(v: unknown) => boolean>): boolean => Array.isArray(list) && list.length <= 10_000 &&
    list.every(item => Array.isArray(item) && item.length === checks.length + 1 && typeof item[0] === 'string' &&
      checks.every((check, i) => check(item[i + 1])))
  return b != null && typeof b === 'object' && b.v === 2 && typeof b.peer === 'string' && typeof b.boot === 'string' &&
    count(b.seq) && tuples(b.claims, count, count) && tuples(b.renews, count, count) && tuples(b.releases, count) &&
    tuples(b.withdraws, count) && tuples(b.refusals, count, text) && tuples(b.votes, count, text) && tuples(b.acks, text, count)
}

/** What a node has queued for its next batch. */
export type Outbox = Omit<ClaimBatch, 'v' | 'peer' | 'boot' | 'seq'>
export const emptyOutbox = (): Outbox => ({ claims: [], renews: [], releases: [], withdraws: [], refusals: [], votes: [], acks: [] })

export function decodeBatch (data: Uint8Array): ClaimBatch | undefined {
  if (data.length > MAX_BATCH_BYTES) return undefined
  try {
    const value = JSON.parse(new TextDecoder().decode(data))
    return validBatch(value) ? value : undefined
  } catch {
    return undefined
  }
}
