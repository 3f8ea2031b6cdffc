import { afterEach, describe, expect, it } from 'vitest'
import * as Automerge from '@automerge/automerge'
import { Ledger } from '../src/crdt/ledger.js'
import { SegmentMap, segmentOf } from '../src/crdt/facts.js'
import type { FactChange } from '../src/crdt/facts.js'
import { memoryStore } from '../src/storage/memory-store.js'
import { openLevelStore } from '../src/storage/level-store.js'
import type { KVStore } from '../src/storage/store.js'
import { HomeLockedError, StorageError } from '../src/errors.js'
import { headsDigestOf, type FactDoc } from '../src/crdt/doc.js'
import { tempDir } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of cleanups.splice(0)) await c() })

async function jobFacts (ledger: Ledger, count: number): Promise<FactChange[]> {
  const slots = await ledger.allocateJobIds(count)
  return slots.map(({ id }) => ({ doc: segmentOf(id) as string, map: SegmentMap.jobs, key: id, value: { id, cmd: ['true'] } }))
}

function collect (ledger: Ledger): FactChange[] {
  const seen: FactChange[] = []
  ledger.onChange(changes => seen.push(...changes))
  return seen
}

/** An in-memory store whose next writes finish after the delays pushed to `delays`, in turn. */
function slowStore (): KVStore & { delays: number[] } {
  const store = memoryStore()
  const delays: number[] = []
  return {
    ...store,
    delays,
    batch: async (writes, options) => {
      await new Promise(resolve => setTimeout(resolve, delays.shift() ?? 0))
      await store.batch(writes, options)
    }
  }
}

describe('ledger', () => {
  it('reports a peer\'s successive values of a fact in order, however its writes finish', async () => {
    const source = new Ledger({ store: memoryStore(), self: 'them' })
    await source.open({ createMeta: true })
    const [{ id }] = await source.allocateJobIds(1)
    const doc = segmentOf(id) as string
    const fact = (value: unknown): FactChange => ({ doc, map: SegmentMap.attempts, key: `${id}|1:them`, value })
    const snapshot = async (): Promise<Uint8Array> => await source.blob(doc) as Uint8Array
    await source.put([{ doc, map: SegmentMap.jobs, key: id, value: { id } }], { sync: true })
    const created = await snapshot()
    await source.put([fact({ epoch: 1 })], { sync: true })
    const started = await snapshot()
    await source.put([fact({ epoch: 1, endedAt: 5 })], { sync: true })
    const ended = await snapshot()

    const store = slowStore()
    const replica = new Ledger({ store, self: 'me' })
    await replica.open({ createMeta: true })
    await replica.applyRemote(doc, current => Automerge.merge(current, Automerge.load<FactDoc>(created)))
    const seen = collect(replica)
    // two sessions bring the start and the end; the start's write finishes after the end's
    store.delays.push(50, 0)
    await Promise.all([
      replica.applyRemote(doc, current => Automerge.merge(current, Automerge.load<FactDoc>(started))),
      replica.applyRemote(doc, current => Automerge.merge(current, Automerge.load<FactDoc>(ended)))
    ])
    expect(seen.map(f => f.value)).toEqual([{ epoch: 1 }, { epoch: 1, endedAt: 5 }])
  })

  it('covers a peer\'s heads while their write is on its way to disk; applied() waits until listeners have them', async () => {
    const source = new Ledger({ store: memoryStore(), self: 'them' })
    await source.open({ createMeta: true })
    const [first, ...rest] = await jobFacts(source, 4)
    await source.put([first], { sync: true })
    const segment = first.doc
    const store = slowStore()
    const replica = new Ledger({ store, self: 'me' })
    await replica.open({ createMeta: true })
    const firstBlob = await source.blob(segment) as Uint8Array
    await replica.applyRemote(segment, current => Automerge.merge(current, Automerge.load<FactDoc>(firstBlob)))

    await source.put(rest, { sync: true })
    const doc = source.frontier().open
    const blob = await source.blob(segment) as Uint8Array
    const seen = collect(replica)
    store.delays.push(200)
    const applying = replica.applyRemote(segment, current => Automerge.merge(current, Automerge.load<FactDoc>(blob)))
    await new Promise(resolve => setTimeout(resolve, 50)) // the write has started and not finished
    // the document has the heads already: a read barrier that stopped here would miss the jobs
    expect(replica.covers({ open: { [segment]: doc[segment] }, sealed: [] })).toBe(true)
    expect(seen).toHaveLength(0)
    await replica.applied()
    expect(seen.filter(f => f.map === SegmentMap.jobs)).toHaveLength(3)
    await applying
  })

  it('persists facts in LevelDB and loads them again, spreading jobs over segments', async () => {
    const { dir, cleanup } = await tempDir()
    cleanups.push(cleanup)
    let store: KVStore = await openLevelStore(dir)
    const ledger = new Ledger({ store, self: 'me', segmentCapacity: 10 })
    await ledger.open({ createMeta: true })
    const facts = await jobFacts(ledger, 25)
    await ledger.put(facts, { sync: true })
    expect(new Set(facts.map(f => f.doc)).size).toBe(3)
    await ledger.close()
    await store.close()

    store = await openLevelStore(dir)
    const reopened = new Ledger({ store, self: 'me', segmentCapacity: 10 })
    const loaded = collect(reopened)
    await reopened.open({ createMeta: false })
    expect(loaded.filter(f => f.map === SegmentMap.jobs).map(f => f.key).sort()).toEqual(facts.map(f => f.key).sort())
    // new jobs continue in the segment that still has room, not in a fresh one
    const more = await jobFacts(reopened, 5)
    expect(more.every(f => f.doc === facts[24].doc)).toBe(true)
    await store.close()
  })

  it('refuses a second open of the same store', async () => {
    const { dir, cleanup } = await tempDir()
    cleanups.push(cleanup)
    const store = await openLevelStore(dir)
    await expect(openLevelStore(dir)).rejects.toBeInstanceOf(HomeLockedError)
    await store.close()
  })

  it('batches many writes into few Automerge changes', async () => {
    const ledger = new Ledger({ store: memoryStore(), self: 'me' })
    await ledger.open({ createMeta: true })
    const facts = await jobFacts(ledger, 200)
    await Promise.all(facts.map(async f => await ledger.put([f])))
    const doc = ledger.doc(facts[0].doc)
    expect(Automerge.getHistory(doc?.doc as Automerge.Doc<unknown>).length).toBeLessThan(5)
  })

  it('knows whether it holds a document with given heads, live or sealed', async () => {
    const ledger = new Ledger({ store: memoryStore(), self: 'me', segmentCapacity: 2 })
    await ledger.open({ createMeta: true })
    const facts = await jobFacts(ledger, 3)
    await ledger.put(facts.slice(0, 2))
    const seg = facts[0].doc
    const heads = headsDigestOf(Automerge.load(await ledger.blob(seg) as Uint8Array))
    expect(ledger.holds(seg, heads)).toBe(true)
    await ledger.seal(seg, [], [])
    expect(ledger.doc(seg)).toBeUndefined()
    expect(ledger.holds(seg, heads)).toBe(true)
    const other = facts[2].doc
    expect(other).not.toBe(seg)
    expect(ledger.holds(other, heads)).toBe(false)
    expect(ledger.holds(seg, headsDigestOf(Automerge.from({ jobs: {} })))).toBe(false)
  })

  it('replicates through the Automerge sync protocol and reports the facts that arrived', async () => {
    const a = new Ledger({ store: memoryStore(), self: 'a' })
    const b = new Ledger({ store: memoryStore(), self: 'b' })
    await a.open({ createMeta: true })
    await b.open({ createMeta: false })
    const arrived = collect(b)
    const facts = await jobFacts(a, 3)
    await a.put(facts)
    const segment = facts[0].doc
    let stateA = Automerge.initSyncState()
    let stateB = Automerge.initSyncState()
    for (let round = 0; round < 10; round++) {
      let msg: Uint8Array | null
      ;[stateA, msg] = Automerge.generateSyncMessage(a.doc(segment)?.doc as Automerge.Doc<unknown>, stateA)
      if (msg != null) {
        const message = msg
        await b.applyRemote(segment, doc => { let next; [next, stateB] = Automerge.receiveSyncMessage(doc, stateB, message); return next })
      }
      const bDoc = b.doc(segment)?.doc
      if (bDoc == null) continue
      ;[stateB, msg] = Automerge.generateSyncMessage(bDoc as Automerge.Doc<unknown>, stateB)
      if (msg != null) {
        const message = msg
        await a.applyRemote(segment, doc => { let next; [next, stateA] = Automerge.receiveSyncMessage(doc, stateA, message); return next })
      }
    }
    expect(arrived.map(f => f.key).sort()).toEqual(facts.map(f => f.key).sort())
  })

  it('keeps nothing of a peer\'s change it could not store, and takes it again once it can', async () => {
    const a = new Ledger({ store: memoryStore(), self: 'a' })
    await a.open({ createMeta: true })
    let full = false
    const inner = memoryStore()
    const store: KVStore = {
      ...inner,
      batch: async (writes, options) => {
        if (full) throw new StorageError('cannot write to the ledger store: No space left on device')
        await inner.batch(writes, options)
      }
    }
    const b = new Ledger({ store, self: 'b' })
    await b.open({ createMeta: false })
    const arrived = collect(b)
    const deliver = async (): Promise<FactChange[]> => {
      const blob = a.doc(segment)?.save() as Uint8Array
      return await b.applyRemote(segment, doc => Automerge.merge(doc, Automerge.load<FactDoc>(blob)))
    }
    const first = await jobFacts(a, 2)
    const segment = first[0].doc
    await a.put(first)
    await deliver()
    const second = await jobFacts(a, 2)
    await a.put(second)
    full = true
    await expect(deliver()).rejects.toBeInstanceOf(StorageError)
    // had b kept the change in memory, the next delivery would bring nothing new and no listener would hear of it
    expect(Object.keys(b.doc(segment)?.doc.jobs ?? {}).sort()).toEqual(first.map(f => f.key).sort())
    full = false
    await deliver()
    expect(arrived.map(f => f.key).sort()).toEqual([...first, ...second].map(f => f.key).sort())
  })
})
