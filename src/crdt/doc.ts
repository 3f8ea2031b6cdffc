import { createHash } from 'node:crypto'
import * as A from '@automerge/automerge'
import type { KVStore, StoreWrite } from '../storage/store.js'
import type { FactChange, FactMap } from './facts.js'

/** Incremental saves kept before they are folded into one snapshot. */
const COMPACT_AFTER_CHANGES = 256

export type FactDoc = Record<string, Record<string, A.ImmutableString> | number>

const snapKey = (id: string): string => `snap:${id}`
const changeKey = (id: string, seq: number): string => `chg:${id}:${String(seq).padStart(12, '0')}`

/**
 * One Automerge document of facts with its persistence: a snapshot plus incremental saves in the
 * store, folded into a new snapshot every so often so loading stays fast.
 */
export class DocHandle {
  readonly id: string
  doc: A.Doc<FactDoc>
  /** Sequence numbers of the incremental saves in the store: [first, next). */
  private firstSeq: number
  private nextSeq: number

  private constructor (id: string, doc: A.Doc<FactDoc>, firstSeq: number, nextSeq: number) {
    this.id = id
    this.doc = doc
    this.firstSeq = firstSeq
    this.nextSeq = nextSeq
  }

  /** A new document whose maps exist from the start: creating a map later on two peers would conflict. */
  static create (id: string, maps: readonly FactMap[]): DocHandle {
    const initial: FactDoc = { v: 1 }
    for (const m of maps) initial[m] = {}
    return new DocHandle(id, A.from(initial), 0, 0)
  }

  /** An empty document, to be filled by a peer's changes. */
  static empty (id: string): DocHandle {
    return new DocHandle(id, A.init(), 0, 0)
  }

  static async load (store: KVStore, id: string): Promise<DocHandle | undefined> {
    const snapshot = await store.get(snapKey(id))
    const changes: Uint8Array[] = []
    let firstSeq = -1
    let nextSeq = 0
    for await (const [key, value] of store.entries(`chg:${id}:`)) {
      const seq = Number(key.slice(key.lastIndexOf(':') + 1))
      if (firstSeq < 0) firstSeq = seq
      nextSeq = seq + 1
      changes.push(value)
    }
    if (snapshot == null && changes.length === 0) return undefined
    let doc = snapshot != null ? A.load<FactDoc>(snapshot) : A.init<FactDoc>()
    for (const chunk of changes) doc = A.loadIncremental(doc, chunk)
    A.saveIncremental(doc) // marks what was loaded as saved
    return new DocHandle(id, doc, Math.max(firstSeq, 0), nextSeq)
  }

  /** The writes that delete a stored document. */
  static async deleteWrites (store: KVStore, id: string): Promise<StoreWrite[]> {
    const writes: StoreWrite[] = [{ key: snapKey(id), value: undefined }]
    for await (const [key] of store.entries(`chg:${id}:`)) writes.push({ key, value: undefined })
    return writes
  }

  /** Writes facts of this replica in one Automerge change. */
  putFacts (facts: FactChange[]): void {
    this.doc = A.change(this.doc, d => {
      for (const f of facts) (d[f.map] as Record<string, A.ImmutableString>)[f.key] = new A.ImmutableString(JSON.stringify(f.value))
    })
  }

  /** Applies a change from elsewhere (a peer's sync message) and returns the facts it brought. */
  update (fn: (doc: A.Doc<FactDoc>) => A.Doc<FactDoc>): FactChange[] {
    const before = A.getHeads(this.doc)
    this.doc = fn(this.doc)
    const after = A.getHeads(this.doc)
    if (sameHeads(before, after)) return []
    return factsFromPatches(this.id, A.diff(this.doc, before, after))
  }

  /** Every fact in the document. */
  allFacts (): FactChange[] {
    const out: FactChange[] = []
    for (const [map, entries] of Object.entries(this.doc)) {
      if (typeof entries !== 'object' || entries == null) continue
      for (const [key, value] of Object.entries(entries)) {
        const fact = parseFact(this.id, map as FactMap, key, value)
        if (fact != null) out.push(fact)
      }
    }
    return out
  }

  /** The store writes that persist what changed since the last call. */
  persistWrites (): StoreWrite[] {
    const chunk = A.saveIncremental(this.doc)
    if (chunk.byteLength === 0) return []
    if (this.nextSeq - this.firstSeq < COMPACT_AFTER_CHANGES) {
      return [{ key: changeKey(this.id, this.nextSeq++), value: chunk }]
    }
    return this.compactWrites()
  }

  /** The store writes that replace every incremental save with one snapshot. */
  compactWrites (): StoreWrite[] {
    A.saveIncremental(this.doc) // the snapshot covers it
    const writes: StoreWrite[] = [{ key: snapKey(this.id), value: A.save(this.doc) }]
    for (let seq = this.firstSeq; seq < this.nextSeq; seq++) writes.push({ key: changeKey(this.id, seq), value: undefined })
    this.firstSeq = this.nextSeq
    return writes
  }

  /** A short digest of the document's heads: equal digests, equal documents. */
  headsDigest (): string {
    return headsDigestOf(this.doc)
  }

  /** Frees the document's WebAssembly memory: the handle must not be used after this. */
  free (): void {
    A.free(this.doc)
  }

  /** The whole document as one compact blob, the fast way to hand a peer a finished segment. */
  save (): Uint8Array {
    return A.save(this.doc)
  }
}

/** A short digest of a document's heads (see `DocHandle.headsDigest`). */
export function headsDigestOf (doc: A.Doc<unknown>): string {
  return createHash('sha256').update(A.getHeads(doc).sort().join(',')).digest('base64url').slice(0, 22)
}

function sameHeads (a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((h, i) => h === b[i])
}

function factsFromPatches (doc: string, patches: A.Patch[]): FactChange[] {
  const out: FactChange[] = []
  for (const p of patches) {
    if (p.action !== 'put' || p.path.length !== 2) continue
    const fact = parseFact(doc, p.path[0] as FactMap, String(p.path[1]), p.value)
    if (fact != null) out.push(fact)
  }
  return out
}

/** A stored fact back to a value; anything that is not a JSON ImmutableString is ignored. */
function parseFact (doc: string, map: FactMap, key: string, raw: unknown): FactChange | undefined {
  if (!(raw instanceof A.ImmutableString)) return undefined
  try {
    return { doc, map, key, value: JSON.parse(raw.val) }
  } catch {
    return undefined
  }
}
