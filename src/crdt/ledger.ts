import { randomBytes } from 'node:crypto'
import createDebug from 'debug'
import type * as A from '@automerge/automerge'
import type { KVStore, StoreWrite } from '../storage/store.js'
import { DocHandle } from './doc.js'
import type { FactDoc } from './doc.js'
import { META_DOC, MetaMap, SegmentMap } from './facts.js'
import type { FactChange } from './facts.js'
import { covers, frontierOf, manifestOf } from './frontier.js'
import type { Holdings, LedgerFrontier } from './frontier.js'
import { SegmentAllocator } from './segment-allocator.js'
import type { JobSlot } from './segment-allocator.js'
import { infoWrite, sealWrites, sealedRecords, sealedSummaries, segmentInfos, clearSealedWrites } from './segment-records.js'
import type { SegmentInfo } from './segment-records.js'
import { WriteBatcher } from './write-batcher.js'

const log = createDebug('meshq:ledger')

/** Jobs per segment: small enough that an Automerge change stays around a millisecond. */
export const DEFAULT_SEGMENT_CAPACITY = 1000

export type ChangeOrigin = 'local' | 'remote' | 'load'
export type ChangeListener = (changes: FactChange[], origin: ChangeOrigin) => void

export interface LedgerInit {
  store: KVStore
  /** This replica's peer id: it names the segments this replica opens. */
  self: string
  segmentCapacity?: number
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'

function newSegmentId (): string {
  return [...randomBytes(6)].map(b => BASE32[b & 31]).join('')
}

/**
 * The replicated ledger: a meta document (cluster facts) and a series of segment documents
 * (jobs and their facts), persisted in the store. Local writes are queued and applied in one
 * Automerge change per document per turn of the event loop, then persisted in one batch
 * (`WriteBatcher`). The ledger knows facts, not job states: listeners derive those.
 * New jobs' ids come from `SegmentAllocator`; `segment-records.ts` is how segments are kept in
 * the store beside their documents.
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
  private readonly wholeListeners = new Set<(docId: string) => Promise<void>>()
  private readonly writes = new WriteBatcher(async (facts, sync) => { await this.commit(facts, sync) })
  private readonly allocator: SegmentAllocator

  constructor (init: LedgerInit) {
    this.store = init.store
    this.self = init.self
    this.capacity = init.segmentCapacity ?? DEFAULT_SEGMENT_CAPACITY
    this.allocator = new SegmentAllocator(this.capacity, async index => await this.openSegment(index))
  }

  /** Loads the meta document and every unsealed segment; listeners get their facts with origin 'load'. */
  async open (options: { createMeta: boolean }): Promise<void> {
    const meta = await DocHandle.load(this.store, META_DOC)
    if (meta != null) this.docs.set(META_DOC, meta)
    else if (options.createMeta) await this.adopt(DocHandle.create(META_DOC, Object.values(MetaMap)))
    for await (const [id, info] of segmentInfos(this.store)) {
      this.segments.set(id, info)
      if (info.creator === this.self) this.allocator.noteOwn(info.index)
      if (!info.sealed) await this.loadSegment(info.id)
    }
    for (const handle of this.docs.values()) this.emit(handle.allFacts(), 'load')
    log('opened: %d segments, %d loaded', this.segments.size, this.docs.size - 1)
  }

  onChange (listener: ChangeListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /**
   * Calls `listener` after a segment document this replica lacked arrived whole from a peer and
   * was applied (`receivedWhole`), and waits for it: the node seals such a segment at once, and
   * the sync session reads the next document only then. So a new node catching up on a long
   * history holds one received segment in memory at a time, not all of them.
   */
  onReceivedWhole (listener: (docId: string) => Promise<void>): () => void {
    this.wholeListeners.add(listener)
    return () => this.wholeListeners.delete(listener)
  }

  /** A peer sent this document whole, and it was applied (see `onReceivedWhole`). */
  async receivedWhole (docId: string): Promise<void> {
    if (docId === META_DOC) return
    for (const listener of this.wholeListeners) await listener(docId)
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
    return await this.allocator.allocate(count)
  }

  /** Writes facts of this replica. Resolves once they are in the store (on disk with `sync`). */
  async put (facts: FactChange[], options: { sync?: boolean } = {}): Promise<void> {
    if (facts.length === 0) return
    await this.writes.put(facts, options.sync ?? false)
  }

  /**
   * Applies a peer's changes to one document (creating it if new), persists them and reports them.
   * One document's changes are applied one batch at a time, in order: two sessions can bring a
   * fact's successive values (an attempt's start, then its end), and writes that finish out of
   * order would otherwise report the older value last, leaving listeners with it for good.
   */
  async applyRemote (docId: string, fn: (doc: A.Doc<FactDoc>) => A.Doc<FactDoc>): Promise<FactChange[]> {
    const previous = this.applying.get(docId) ?? Promise.resolve()
    const turn = previous.then(async () => await this.applyRemoteNow(docId, fn))
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
      if (docId !== META_DOC) {
        await this.recordSegment({ id: docId, creator: 'remote', sealed: false, index: -1 })
      }
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
    await this.writes.drain()
  }

  /** Applies a batch of local facts, one Automerge change per document, and persists it in one store batch. */
  private async commit (facts: FactChange[], sync: boolean): Promise<void> {
    const writes: StoreWrite[] = []
    const touched: DocHandle[] = []
    try {
      for (const [docId, items] of Map.groupBy(facts, fact => fact.doc)) {
        const handle = this.docs.get(docId) ?? await this.loadSegment(docId)
        if (handle == null) throw new Error(`unknown ledger document ${docId}`)
        handle.putFacts(items)
        touched.push(handle)
        writes.push(...handle.persistWrites())
      }
      await this.store.batch(writes, { sync })
      this.emit(facts, 'local')
    } catch (err) {
      // What is not on disk must not stay in memory either: a failed submit must not reappear later.
      for (const handle of touched) await this.reload(handle.id)
      throw err
    }
  }

  private emit (changes: FactChange[], origin: ChangeOrigin): void {
    if (changes.length === 0) return
    for (const listener of this.listeners) listener(changes, origin)
  }

  private async openSegment (index: number): Promise<string> {
    let id = newSegmentId()
    while (this.segments.has(id)) id = newSegmentId()
    await this.adopt(DocHandle.create(id, Object.values(SegmentMap)))
    await this.recordSegment({ id, creator: this.self, sealed: false, index })
    log('opened segment %s', id)
    return id
  }

  private async adopt (handle: DocHandle): Promise<void> {
    this.docs.set(handle.id, handle)
    await this.store.batch(handle.persistWrites(), { sync: true })
  }

  private async recordSegment (info: SegmentInfo): Promise<void> {
    this.segments.set(info.id, info)
    await this.store.batch([infoWrite(info)], { sync: true })
  }

  /**
   * Seals a finished segment: its document leaves memory (it stays in the store, to serve peers),
   * and `records` (the final views of its jobs) are what listings read from then on; `summary`
   * is what stays in memory across restarts.
   */
  async seal (id: string, records: unknown[], summary: unknown): Promise<void> {
    const handle = this.docs.get(id)
    const info = this.segments.get(id)
    if (handle == null || info == null || info.sealed || this.writes.waitsFor(id)) return
    this.allocator.close(id)
    const sealed = { ...info, sealed: true, heads: handle.headsDigest() }
    await this.store.batch([...handle.compactWrites(), ...sealWrites(sealed, records, summary)], { sync: true })
    this.segments.set(id, sealed)
    this.docs.delete(id)
    // its WebAssembly memory goes back to Automerge's allocator now, not whenever the wrapper is
    // collected (that memory never shrinks, so its peak is what counts); a peer change being
    // applied to it still holds it, and leaves it to the collector
    if (!this.applying.has(id)) handle.free()
    log('sealed segment %s (%d jobs)', id, records.length)
  }

  /** Every document's heads digest, sealed ones included: what a peer compares to see what differs. */
  manifest (): Record<string, string> {
    return manifestOf(this.holdings())
  }

  /** What this replica holds now, for a peer's read barrier (`/meshq/heads/1`). */
  frontier (): LedgerFrontier {
    return frontierOf(this.holdings())
  }

  /** Whether this replica has everything of a peer's frontier (see `covers` in `frontier.ts`). */
  covers (frontier: LedgerFrontier): boolean {
    return covers(this.holdings(), frontier)
  }

  private holdings (): Holdings {
    return { docs: this.docs, segments: this.segments }
  }

  /** Whether this replica holds the document with these heads (their digest), live or sealed. */
  holds (docId: string, headsDigest: string): boolean {
    return (this.docs.get(docId)?.headsDigest() ?? this.segments.get(docId)?.heads) === headsDigest
  }

  /** A document as one saved blob: what a peer that lacks it gets. */
  async blob (id: string): Promise<Uint8Array | undefined> {
    return this.docs.get(id)?.save() ?? (await DocHandle.load(this.store, id))?.save()
  }

  /** The summaries of every sealed segment, as given to `seal`. */
  async * sealedSummaries<T> (): AsyncIterable<T> {
    yield * sealedSummaries<T>(this.store)
  }

  /** The final job records of a sealed segment. */
  async sealedRecords<T> (id: string): Promise<T[]> {
    return await sealedRecords<T>(this.store, id)
  }

  /**
   * Removes a segment from this replica for good (`meshq gc`): its document, records and summary.
   * Its id stays known, so that a peer that still has it cannot bring it back.
   */
  async drop (id: string): Promise<void> {
    const info = this.segments.get(id) ?? { id, creator: 'remote', sealed: true, index: -1 }
    if (info.dropped === true) return
    this.allocator.close(id)
    const dropped: SegmentInfo = { ...info, sealed: true, dropped: true, heads: undefined }
    await this.store.batch([...await DocHandle.deleteWrites(this.store, id), ...clearSealedWrites(dropped)], { sync: true })
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
      await this.store.batch(clearSealedWrites(unsealed), { sync: true })
      this.emit(handle.allFacts(), 'load')
      log('unsealed segment %s', id)
      return handle
    }
    if (info?.creator === this.self && !info.sealed) {
      this.allocator.resume(id, Object.keys(handle.doc.jobs ?? {}).length, info.index)
    }
    return handle
  }

  private async reload (id: string): Promise<void> {
    this.docs.delete(id)
    const handle = await DocHandle.load(this.store, id)
    if (handle != null) this.docs.set(id, handle)
  }
}
