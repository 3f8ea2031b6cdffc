import { ControlKind } from '../types.js'
import { checkRange, splitTaskId } from '../array-task.js'
import type { ArrayRange } from '../array-task.js'
import type { Attempt, Control, JobId, JobSpec, PeerIdString, SpecPatch } from '../types.js'

/**
 * The ledger's vocabulary. Every value in a ledger document is a fact with exactly one writer,
 * stored under a key no other writer uses, so Automerge never has to pick a winner between
 * two writers of one field. Job state is derived from the facts (see derive.ts).
 */

/** The maps of a segment document: job specs, attempts and control facts. */
export const SegmentMap = { jobs: 'jobs', attempts: 'attempts', controls: 'controls' } as const
/**
 * The maps of the cluster's meta document: `members` (written by the admitting member, key: peer),
 * `nodes` (each node's own record: addresses, slots, tags; key: peer, written by that peer),
 * `invites` (key: invite id, written by the inviter; uses `use|<invite>|<peer>`; revocations
 * `revoke|<invite>|<peer>`), `evictions` (key: `<peer>|<by>`), group `pauses` and `limits`, `drains`,
 * and `drops`: segments removed from every replica by `meshq gc` (key: `<segment>|<by>`).
 */
export const MetaMap = {
  pauses: 'pauses',
  drains: 'drains',
  members: 'members',
  nodes: 'nodes',
  invites: 'invites',
  evictions: 'evictions',
  limits: 'limits',
  drops: 'drops'
} as const
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

/** A setting of a group, keyed `<group>|<lamport>:<peer>`: the highest stamp wins. */
export interface GroupFact {
  lamport: number
  by: PeerIdString
}

/** A group pause or resume. */
export interface PauseFact extends GroupFact {
  paused: boolean
  /** Wall-clock ms after which a pause lapses by itself. */
  until?: number
}

/** `meshq gc` dropped a sealed segment whose jobs all ended before `before` (wall-clock ms). */
export interface DropFact {
  by: PeerIdString
  at: number
  before: number
}

export const dropKey = (segment: string, peer: PeerIdString): string => `${segment}|${peer}`

/** A cap on the group's jobs running at once across the mesh; null lifts it. */
export interface LimitFact extends GroupFact {
  limit: number | null
}

export const attemptKey = (job: JobId, epoch: number, peer: PeerIdString): string => `${job}|${epoch}:${peer}`
export const controlKey = (job: JobId, lamport: number, peer: PeerIdString): string => `${job}|${lamport}:${peer}`
export const groupFactKey = (group: string, lamport: number, peer: PeerIdString): string => `${group}|${lamport}:${peer}`

/** The subject of a keyed fact: the job id of an attempt or control, the group of a pause. */
export function factSubject (key: string): string {
  const bar = key.lastIndexOf('|')
  return bar < 0 ? key : key.slice(0, bar)
}

/**
 * A job id: `<segment>-<n>`, the segment six base32 characters (see ledger.ts), n from 1; a task
 * of an array adds its index in brackets (src/array-task.ts).
 */
const JOB_ID = /^[a-z2-7]{6}-[1-9][0-9]*(\[(0|[1-9][0-9]{0,9})\])?$/

/** Whether `id` has the form of a job id: also a safe file name, as job ids name output directories. */
export const isJobId = (id: unknown): id is JobId => typeof id === 'string' && JOB_ID.test(id)

/** Segment id of a job id: ids are `<segment>-<n>`. */
export function segmentOf (id: string): string | undefined {
  const dash = id.lastIndexOf('-')
  return dash <= 0 ? undefined : id.slice(0, dash)
}

/** Total order on stamped facts: by Lamport stamp, then by writer. */
export function compareStamps (a: { lamport: number, by: string }, b: { lamport: number, by: string }): number {
  return a.lamport - b.lamport || (a.by < b.by ? -1 : a.by > b.by ? 1 : 0)
}

export function latest<T extends { lamport: number, by: string }> (
  items: Iterable<T>, filter: (item: T) => boolean = () => true
): T | undefined {
  let best: T | undefined
  for (const item of items) {
    if (filter(item) && (best == null || compareStamps(item, best) > 0)) best = item
  }
  return best
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v != null && !Array.isArray(v)
const isStringArray = (v: unknown): boolean => Array.isArray(v) && v.every(s => typeof s === 'string')
const isInt = (v: unknown): boolean => Number.isSafeInteger(v)
/** A time in ms that a Date can hold: times are rendered as ISO dates, and one that cannot be would fail every view of the job. */
const isTime = (v: unknown): boolean => isInt(v) && Math.abs(v as number) <= 8.64e15
const optional = (v: unknown, check: (v: unknown) => boolean): boolean => v === undefined || v === null || check(v)
/** A string the OS can take as an argument, an environment variable or a path: one without a NUL byte. */
const isOsString = (v: unknown): boolean => typeof v === 'string' && !v.includes('\0')
const isCommand = (v: unknown): boolean => Array.isArray(v) && v.length > 0 && v.every(isOsString)
const isEnv = (v: unknown): boolean => isObject(v) && Object.entries(v).every(([name, value]) => isOsString(name) && isOsString(value))

const PATCH_CHECKS: Record<keyof SpecPatch, (v: unknown) => boolean> = {
  name: v => typeof v === 'string',
  pri: isInt,
  retries: v => isInt(v) && (v as number) >= 0,
  ttrMs: v => isInt(v) && (v as number) >= 1000,
  timeoutMs: v => isInt(v) && (v as number) > 0,
  tags: isStringArray,
  cores: v => isInt(v) && (v as number) >= 1,
  notBefore: isTime
}

/** An array's range as submit checks it: a bad one would make every node derive nonsense tasks. */
function isRange (v: unknown): boolean {
  if (!isObject(v)) return false
  try {
    checkRange(v as unknown as ArrayRange)
    return true
  } catch {
    return false
  }
}

function validPatch (patch: unknown): boolean {
  return isObject(patch) && Object.entries(patch).every(([field, v]) => PATCH_CHECKS[field as keyof SpecPatch]?.(v) === true)
}

/**
 * Whether a fact has the shape its map requires. Members are trusted, but a bug or a bad version
 * on one of them must not crash the others: facts that fail this are ignored (and logged).
 */
export function validFact (change: FactChange): boolean {
  const v = change.value
  if (!isObject(v)) return false
  switch (change.map) {
    case SegmentMap.jobs:
      return v.id === change.key && isJobId(v.id) && isCommand(v.cmd) && isOsString(v.cwd) && isEnv(v.env) &&
        isStringArray(v.after) && isStringArray(v.afterGroup) && isStringArray(v.tags) &&
        isInt(v.pri) && isInt(v.retries) && isInt(v.cores) && isInt(v.ttrMs) && isTime(v.submittedAt) && isInt(v.seq) &&
        optional(v.group, g => typeof g === 'string') && optional(v.notBefore, isTime) && optional(v.timeoutMs, isInt) &&
        optional(v.afterAny, isStringArray) && optional(v.afterGroupAny, isStringArray) &&
        splitTaskId(v.id) == null && optional(v.array, isRange) && optional(v.arrayLimit, n => isInt(n) && (n as number) >= 1) &&
        v.arrayId === undefined && v.arrayIndex === undefined
    case SegmentMap.attempts:
      return typeof v.job === 'string' && change.key.startsWith(`${v.job}|`) && isInt(v.epoch) && typeof v.node === 'string' &&
        isInt(v.basis) && isTime(v.claimedAt) && optional(v.endedAt, isTime) && optional(v.startedAt, isTime)
    case SegmentMap.controls:
      return typeof v.kind === 'string' && isInt(v.lamport) && typeof v.by === 'string' &&
        (v.kind !== ControlKind.modify || validPatch(v.patch))
    case MetaMap.pauses:
      return typeof v.paused === 'boolean' && isInt(v.lamport) && typeof v.by === 'string' && optional(v.until, isTime)
    case MetaMap.limits:
      return (v.limit === null || (isInt(v.limit) && (v.limit as number) > 0)) && isInt(v.lamport) && typeof v.by === 'string'
    default:
      return true
  }
}
