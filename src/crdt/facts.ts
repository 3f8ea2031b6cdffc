import type { Attempt, Control, JobId, JobSpec, PeerIdString } from '../types.js'

/**
 * The ledger's vocabulary. Every value in a ledger document is a fact with exactly one writer,
 * stored under a key no other writer uses, so Automerge never has to pick a winner between
 * two writers of one field. Job state is derived from the facts (see derive.ts).
 */

/** The maps of a segment document: job specs, attempts and control facts. */
export const SegmentMap = { jobs: 'jobs', attempts: 'attempts', controls: 'controls' } as const
/** The maps of the cluster's meta document. */
export const MetaMap = { pauses: 'pauses', drains: 'drains', members: 'members', invites: 'invites' } as const
export type FactMap = typeof SegmentMap[keyof typeof SegmentMap] | typeof MetaMap[keyof typeof MetaMap]

export const META_DOC = 'meta'

/** One fact written or received: the unit the ledger persists, replicates and reports. */
export interface FactChange {
  doc: string
  map: FactMap
  key: string
  value: unknown
}

/** Every fact about one job, as the job table keeps it. */
export interface JobFacts {
  spec: JobSpec
  attempts: Map<string, Attempt>
  controls: Map<string, Control>
}

/** A group pause or resume, keyed `<group>|<lamport>:<peer>`; the highest stamp wins. */
export interface PauseFact {
  paused: boolean
  /** Wall-clock ms after which a pause lapses by itself. */
  until?: number
  lamport: number
  by: PeerIdString
}

export const attemptKey = (job: JobId, epoch: number, peer: PeerIdString): string => `${job}|${epoch}:${peer}`
export const controlKey = (job: JobId, lamport: number, peer: PeerIdString): string => `${job}|${lamport}:${peer}`
export const pauseKey = (group: string, lamport: number, peer: PeerIdString): string => `${group}|${lamport}:${peer}`

/** The subject of a keyed fact: the job id of an attempt or control, the group of a pause. */
export function factSubject (key: string): string {
  const bar = key.lastIndexOf('|')
  return bar < 0 ? key : key.slice(0, bar)
}

/** Segment id of a job id: ids are `<segment>-<n>`. */
export function segmentOf (id: string): string | undefined {
  const dash = id.lastIndexOf('-')
  return dash <= 0 ? undefined : id.slice(0, dash)
}

/** Total order on stamped facts: by Lamport stamp, then by writer. */
export function compareStamps (a: { lamport: number, by: string }, b: { lamport: number, by: string }): number {
  return a.lamport - b.lamport || (a.by < b.by ? -1 : a.by > b.by ? 1 : 0)
}

export function latest<T extends { lamport: number, by: string }> (items: Iterable<T>, filter: (item: T) => boolean = () => true): T | undefined {
  let best: T | undefined
  for (const item of items) {
    if (filter(item) && (best == null || compareStamps(item, best) > 0)) best = item
  }
  return best
}
