import * as A from '@automerge/automerge'
import type { DocHandle } from './doc.js'
import type { SegmentInfo } from './segment-records.js'

/** A replica's documents as of now: the heads of those in memory, the ids of the sealed ones. */
export interface LedgerFrontier {
  open: Record<string, string[]>
  sealed: string[]
}

/** What a replica holds: its documents in memory, and the records of all its segments. */
export interface Holdings {
  docs: ReadonlyMap<string, DocHandle>
  segments: ReadonlyMap<string, SegmentInfo>
}

/** Every document's heads digest, sealed ones included: what a peer compares to see what differs. */
export function manifestOf ({ docs, segments }: Holdings): Record<string, string> {
  const out: Record<string, string> = {}
  for (const info of segments.values()) {
    if (info.sealed && info.heads != null && info.dropped !== true) out[info.id] = info.heads
  }
  for (const handle of docs.values()) out[handle.id] = handle.headsDigest()
  return out
}

/** What a replica holds now, for a peer's read barrier (`/meshq/heads/1`). */
export function frontierOf ({ docs, segments }: Holdings): LedgerFrontier {
  const open: Record<string, string[]> = {}
  for (const handle of docs.values()) open[handle.id] = A.getHeads(handle.doc)
  const sealed = [...segments.values()]
    .filter(info => info.sealed && info.dropped !== true && !docs.has(info.id))
    .map(info => info.id)
  return { open, sealed }
}

/**
 * Whether a replica has everything of a peer's frontier: every change of its open documents,
 * and every document it sealed. (A document sealed here counts as caught up: all its jobs ended.)
 */
export function covers ({ docs, segments }: Holdings, frontier: LedgerFrontier): boolean {
  const has = (id: string): boolean => docs.has(id) || segments.has(id)
  return frontier.sealed.every(has) && Object.entries(frontier.open).every(([id, heads]) => {
    const handle = docs.get(id)
    if (handle == null) return segments.get(id)?.sealed === true
    try {
      return A.hasHeads(handle.doc, heads)
    } catch {
      return false // heads that are not hashes: never covered
    }
  })
}
