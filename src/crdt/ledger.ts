import { randomBytes } from 'node:crypto'
import createDebug from 'debug'
import * as A from '@automerge/automerge'
import { DocHandle } from './doc.js'
import type { FactDoc } from './doc.js'
import { META_DOC, MetaMap, SegmentMap } from './facts.js'
import type { FactChange } from './facts.js'
import { decodeJson, encodeJson } from '../storage/store.js'
import type { KVStore, StoreWrite } from '../storage/store.js'
import type { JobId } from '../types.js'

const log = createDebug('meshq:ledger')

/** Jobs per segment: small enough that an Automerge change stays around a millisecond. */
export const DEFAULT_SEGMENT_CAPACITY = 1000

export interface SegmentInfo {
  id: string
  creator: string
  sealed: boolean
  /** The creator's count of segments before this one: with a job's position, its submit order. */
  index: number
  /** Digest of the document's heads when it was sealed. */
  heads?: string
  /** Removed by `meshq gc`: gone from the store, and refused from peers. */
  dropped?: boolean
}

/** A replica's documents as of now: the heads of those in memory, the ids of the sealed ones. */
export interface LedgerFrontier {
  open: Record<string, string[]>
  sealed: string[]
}

/** A new job's id and its place in its submitter's order. */
export interface JobSlot {
  id: JobId
  n: number
  seq: number
}

export type ChangeOrigin = 'local' | 'remote' | 'load'
export type ChangeListener = (changes: FactChange[], origin: ChangeOrigin) => void

export interface LedgerInit {
  store: KVStore
  /** This replica's peer id: it names the segments this replica opens. */
  self: string
  segmentCapacity?: number
}

interface QueuedWrite {
  fact: FactChange
  sync: boolean
  resolve: () => void
  reject: (err: Error) => void
}

const segInfoKey = (id: string): string => `seg:${id}`
const sealedKey = (id: string): string => `sealed:${id}`
const summaryKey = (id: string): string => `sealsum:${id}`
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'

function newSegmentId (): string {
  return [...randomBytes(6)].map(b => BASE32[b & 31]).join('')
}

/**
 * The replicated ledger: a meta document (cluster facts) and a series of segment documents
 * (jobs and their facts), persisted in the store. Local writes are queued and applied in one
 * Automerge change per document per turn of the event loop, then persisted in one batch.
 * The ledger knows facts, not job states: listeners derive those.
 */
export class Ledger {
  private readonly store: KVStore
  private readonly self: string
  /** Jobs per segment. */
  readonly capacity: number
  private readonly docs = new Map<string, DocHandle>()
  private readonly segments = new Map<string, SegmentInfo>()
  /** Per document, the peer changes being applied: the next waits for them (see `applyRemote`). */
  private readonly applying = new Map<string, Promise<void>>()
  private readonly listeners = new Set<ChangeListener>()
  private queue: QueuedWrite[] = []
  private flushScheduled = false
  private flushing = false
  /** The segment this replica adds its submitted jobs to, and how many it holds. */
  private current?: { id: string, count: number, index: number }
  /** Index of the next segment this replica opens. */
  private nextIndex = 0
  private allocating: Promise<void> = Promise.resolve()

  constructor (init: LedgerInit) {
    this.store = init.store
    this.self = init.self
    this.capacity = init.segmentCapacity ?? DEFAULT_SEGMENT_CAPACITY
  }

  /** Loads the meta document and every unsealed segment; listeners get their facts with origin 'load'. */
  async open (options: { createMeta: boolean }): Promise<void> {
    const meta = await DocHandle.load(this.store, META_DOC)
    if (meta != null) this.docs.set(META_DOC, meta)
    else if (options.createMeta) await this.adopt(DocHandle.create(META_DOC, Object.values(MetaMap)))
    for await (const [key, value] of this.store.entries('seg:')) {
      const info = decodeJson<SegmentInfo>(value)
      this.segments.set(key.slice(4), info)
      if (info.creator === this.self) this.nextIndex = Math.max(this.nextIndex, info.index + 1)
      if (!info.sealed) await this.loadSegment(info.id)
    }
    for (const handle of this.docs.values()) this.emit(handle.allFacts(), 'load')
    log('opened: %d segments, %d loaded', this.segments.size, this.docs.size - 1)
  }

  onChange (listener: ChangeListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  segmentList (): SegmentInfo[] {
    return [...this.segments.values()]
  }

  doc (id: string): DocHandle | undefined {
    return this.docs.get(id)
  }

  /**
   * Ids for `count` new jobs in this replica's open segment, opening new segments as they fill.
   * The ids are reserved in memory only: they become facts when their specs are written.
   */
  async allocateJobIds (count: number): Promise<JobSlot[]> {
    // serialised: two submits must not both open a new segment
    const previous = this.allocating
    let release = (): void => {}
    this.allocating = new Promise(resolve => { release = resolve })
    await previous
    try {
      return await this.allocate(count)
    } finally {
      release()
    }
  }

  private async allocate (count: number): Promise<JobSlot[]> {
    const slots: JobSlot[] = []
    while (slots.length < count) {
      if (this.current == null || this.current.count >= this.capacity) await this.openSegment()
      const seg = this.current as { id: string, count: number, index: number }
      const n = ++seg.count
      slots.push({ id: `${seg.id}-${n}` as JobId, n, seq: seg.index * this.capacity + n })
    }
    return slots
  }

  /** Writes facts of this replica. Resolves once they are in the store (on disk with `sync`). */
  async put (facts: FactChange[], options: { sync?: boolean } = {}): Promise<void> {
    if (facts.length === 0) return
    const written = facts.map(async fact => await new Promise<void>((resolve, reject) => {
      this.queue.push({ fact, sync: options.sync ?? false, resolve, reject })
    }))
    this.scheduleFlush()
    await Promise.all(written)
  }

  /**
   * Applies a peer's changes to one document (creating it if new), persists them and reports them.
   * One document's changes are applied one batch at a time, in order: two sessions can bring a
   * fact's successive values (an attempt's start, then its end), and writes that finish out of
   * order would otherwise report the older value last, leaving listeners with it for good.
   */
  async applyRemote (docId: string, fn: (doc: A.Doc<FactDoc>) => A.Doc<FactDoc>): Promise<FactChange[]> {
    const turn = (this.applying.get(docId) ?? Promise.resolve()).then(async () => await this.applyRemoteNow(docId, fn))
    const settled = turn.then(() => {}, () => {})
    this.applying.set(docId, settled)
    void settled.then(() => { if (this.applying.get(docId) === settled) this.applying.delete(docId) })
    return await turn
  }

  /**
   * Resolves once every peer change being applied now has reached the listeners. A document holds
   * a change (and `covers` counts it) while it is still being persisted, before listeners hear of it.
   */
  async applied (): Promise<void> {
    await Promise.all(this.applying.values())
  }

  private async applyRemoteNow (docId: string, fn: (doc: A.Doc<FactDoc>) => A.Doc<FactDoc>): Promise<FactChange[]> {
    if (this.segments.get(docId)?.dropped === true) return []
    let handle = this.docs.get(docId) ?? (this.segments.has(docId) ? await this.loadSegment(docId) : undefined)
    if (handle == null) {
      handle = DocHandle.empty(docId)
      if (docId !== META_DOC) await this.recordSegment({ id: docId, creator: 'remote', sealed: false, index: -1 })
      this.docs.set(docId, handle)
    }
    const changes = handle.update(fn)
    if (changes.length === 0) return changes
    try {
      await this.store.batch(handle.persistWrites())
    } catch (err) {
      // Not on disk, so not in memory either: had the document kept them, they would count as
      // known to every later sync although no listener ever saw them (the node would never catch up).
      await this.reload(docId)
      throw err
    }
    this.emit(changes, 'remote')
    return changes
  }

  async close (): Promise<void> {
    await this.flushNow()
  }

  /** Resolves when every queued write is persisted. */
  async flushNow (): Promise<void> {
    while (this.queue.length > 0 || this.flushing) {
      await new Promise<void>(resolve => setImmediate(resolve))
    }
  }

  private scheduleFlush (): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => { void this.flush() })
  }

  /** Applies everything queued, one Automerge change per document, and persists it in one batch. */
  private async flush (): Promise<void> {
    this.flushScheduled = false
    if (this.flushing || this.queue.length === 0) return
    this.flushing = true
    const batch = this.queue
    this.queue = []
    const byDoc = Map.groupBy(batch, w => w.fact.doc)
    const writes: StoreWrite[] = []
    const touched: DocHandle[] = []
    try {
      for (const [docId, items] of byDoc) {
        const handle = this.docs.get(docId) ?? await this.loadSegment(docId)
        if (handle == null) throw new Error(`unknown ledger document ${docId}`)
        handle.putFacts(items.map(i => i.fact))
        touched.push(handle)
        writes.push(...handle.persistWrites())
      }
      await this.store.batch(writes, { sync: batch.some(w => w.sync) })
      this.emit(batch.map(w => w.fact), 'local')
      for (const w of batch) w.resolve()
    } catch (err) {
      // What is not on disk must not stay in memory either: a failed submit must not reappear later.
      for (const handle of touched) await this.reload(handle.id)
      for (const w of batch) w.reject(err as Error)
    } finally {
      this.flushing = false
      if (this.queue.length > 0) this.scheduleFlush()
    }
  }

  private emit (changes: FactChange[], origin: ChangeOrigin): void {
    if (changes.length === 0) return
    for (const listener of this.listeners) listener(changes, origin)
  }

  private async openSegment (): Promise<void> {
    let id = newSegmentId()
    while (this.segments.has(id)) id = newSegmentId()
    await this.adopt(DocHandle.create(id, Object.values(SegmentMap)))
    const index = this.nextIndex++
    await this.recordSegment({ id, creator: this.self, sealed: false, index })
    this.current = { id, count: 0, index }
    log('opened segment %s', id)
  }

  private async adopt (handle: DocHandle): Promise<void> {
    this.docs.set(handle.id, handle)
    await this.store.batch(handle.persistWrites(), { sync: true })
  }

  private async recordSegment (info: SegmentInfo): Promise<void> {
    this.segments.set(info.id, info)
    await this.store.batch([{ key: segInfoKey(info.id), value: encodeJson(info) }], { sync: true })
  }

  /**
   * Seals a finished segment: its document leaves memory (it stays in the store, to serve peers),
   * and `records` (the final views of its jobs) are what listings read from then on; `summary`
   * is what stays in memory across restarts.
   */
  async seal (id: string, records: unknown[], summary: unknown): Promise<void> {
    const handle = this.docs.get(id)
    const info = this.segments.get(id)
    if (handle == null || info == null || info.sealed || this.queue.some(w => w.fact.doc === id)) return
    if (this.current?.id === id) this.current = undefined
    const sealed = { ...info, sealed: true, heads: handle.headsDigest() }
    await this.store.batch([
      ...handle.compactWrites(),
      { key: sealedKey(id), value: encodeJson(records) },
      { key: summaryKey(id), value: encodeJson(summary) },
      { key: segInfoKey(id), value: encodeJson(sealed) }
    ], { sync: true })
    this.segments.set(id, sealed)
    this.docs.delete(id)
    log('sealed segment %s (%d jobs)', id, records.length)
  }

  /** Every document's heads digest, sealed ones included: what a peer compares to see what differs. */
  manifest (): Record<string, string> {
    const out: Record<string, string> = {}
    for (const info of this.segments.values()) if (info.sealed && info.heads != null && info.dropped !== true) out[info.id] = info.heads
    for (const handle of this.docs.values()) out[handle.id] = handle.headsDigest()
    return out
  }

  /** What this replica holds now, for a peer's read barrier (`/meshq/heads/1`). */
  frontier (): LedgerFrontier {
    const open: Record<string, string[]> = {}
    for (const handle of this.docs.values()) open[handle.id] = A.getHeads(handle.doc)
    const sealed = [...this.segments.values()].filter(info => info.sealed && info.dropped !== true && !this.docs.has(info.id)).map(info => info.id)
    return { open, sealed }
  }

  /**
   * Whether this replica has everything of a peer's frontier: every change of its open documents,
   * and every document it sealed. (A document sealed here counts as caught up: all its jobs ended.)
   */
  covers (frontier: LedgerFrontier): boolean {
    const has = (id: string): boolean => this.docs.has(id) || this.segments.has(id)
    return frontier.sealed.every(has) && Object.entries(frontier.open).every(([id, heads]) => {
      const handle = this.docs.get(id)
      if (handle == null) return this.segments.get(id)?.sealed === true
      try {
        return A.hasHeads(handle.doc, heads)
      } catch {
        return false // heads that are not hashes: never covered
      }
    })
  }

  /** A document as one saved blob: what a peer that lacks it gets. */
  async blob (id: string): Promise<Uint8Array | undefined> {
    return this.docs.get(id)?.save() ?? (await DocHandle.load(this.store, id))?.save()
  }

  /** The summaries of every sealed segment, as given to `seal`. */
  async * sealedSummaries<T> (): AsyncIterable<T> {
    for await (const [, value] of this.store.entries('sealsum:')) yield decodeJson<T>(value)
  }

  /** The final job records of a sealed segment. */
  async sealedRecords<T> (id: string): Promise<T[]> {
    const bytes = await this.store.get(sealedKey(id))
    return bytes == null ? [] : decodeJson<T[]>(bytes)
  }

  /**
   * Removes a segment from this replica for good (`meshq gc`): its document, records and summary.
   * Its id stays known, so that a peer that still has it cannot bring it back.
   */
  async drop (id: string): Promise<void> {
    const info = this.segments.get(id) ?? { id, creator: 'remote', sealed: true, index: -1 }
    if (info.dropped === true) return
    if (this.current?.id === id) this.current = undefined
    const dropped: SegmentInfo = { ...info, sealed: true, dropped: true, heads: undefined }
    await this.store.batch([
      ...await DocHandle.deleteWrites(this.store, id),
      { key: sealedKey(id), value: undefined },
      { key: summaryKey(id), value: undefined },
      { key: segInfoKey(id), value: encodeJson(dropped) }
    ], { sync: true })
    this.segments.set(id, dropped)
    this.docs.delete(id)
    log('dropped segment %s', id)
  }

  /** Loads a sealed segment back (a job of it is acted on again); listeners get all its facts. */
  async unseal (id: string): Promise<void> {
    const info = this.segments.get(id)
    if (this.docs.has(id) || info?.sealed !== true || info.dropped === true) return
    await this.loadSegment(id)
  }

  private async loadSegment (id: string): Promise<DocHandle | undefined> {
    const handle = await DocHandle.load(this.store, id)
    if (handle == null) return undefined
    this.docs.set(id, handle)
    const info = this.segments.get(id)
    if (info?.sealed === true) {
      const unsealed = { ...info, sealed: false }
      this.segments.set(id, unsealed)
      await this.store.batch([
        { key: sealedKey(id), value: undefined },
        { key: summaryKey(id), value: undefined },
        { key: segInfoKey(id), value: encodeJson(unsealed) }
      ], { sync: true })
      this.emit(handle.allFacts(), 'load')
      log('unsealed segment %s', id)
      return handle
    }
    if (info?.creator === this.self && !info.sealed) {
      const count = Object.keys(handle.doc.jobs ?? {}).length
      if (count < this.capacity) this.current = { id, count, index: info.index }
    }
    return handle
  }

  private async reload (id: string): Promise<void> {
    this.docs.delete(id)
    const handle = await DocHandle.load(this.store, id)
    if (handle != null) this.docs.set(id, handle)
  }
}
