/**
 * Ledger sync (`SyncService`) over in-memory streams: three replicas in a line, A — B — C, with
 * no link between A and C, so that what A writes reaches C only as B's relay; and a new replica
 * catching up on documents sent whole.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { Connection, Stream } from '@libp2p/interface'
import { streamPair } from '@libp2p/utils'
import { afterEach, describe, expect, it } from 'vitest'
import { Ledger } from '../src/crdt/ledger.js'
import { SegmentMap, segmentOf } from '../src/crdt/facts.js'
import type { MeshqLibp2p } from '../src/net/p2p.js'
import { RELAY_DELAY_MS, SyncService } from '../src/net/sync.js'
import { memoryStore } from '../src/storage/memory-store.js'
import { waitFor } from './helpers.js'

type Handler = (stream: Stream, connection: Connection) => void

interface Replica { id: string, ledger: Ledger, sync: SyncService, links: Set<string> }

const replicas = new Map<string, Replica & { handler?: Handler }>()
/** Frames sent on every stream, per direction ("from>to"). */
const frames = new Map<string, number>()

/** Counts what is sent on a stream. */
function counted (stream: Stream, from: string, to: string): Stream {
  const send = stream.send.bind(stream)
  stream.send = (data: Parameters<Stream['send']>[0]) => {
    frames.set(`${from}>${to}`, (frames.get(`${from}>${to}`) ?? 0) + 1)
    return send(data)
  }
  return stream
}
afterEach(async () => {
  for (const r of replicas.values()) {
    await r.sync.stop()
    await r.ledger.close()
  }
  replicas.clear()
  frames.clear()
})

/** A replica whose host reaches, over stream pairs, the replicas it has a link to. */
async function replica (founder: boolean, segmentCapacity?: number): Promise<Replica> {
  const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  const ledger = new Ledger({ store: memoryStore(), self: id, segmentCapacity })
  await ledger.open({ createMeta: founder })
  const links = new Set<string>()
  const host = {
    handle: async (_protocol: string, handler: Handler) => { (replicas.get(id) as { handler?: Handler }).handler = handler },
    dialProtocol: async (peer: ReturnType<typeof peerIdFromString>) => {
      const other = replicas.get(peer.toString())
      if (other?.handler == null || !links.has(other.id)) throw new Error('no route')
      const [outbound, inbound] = await streamPair()
      other.handler(counted(inbound, other.id, id), { remotePeer: peerIdFromString(id) } as unknown as Connection)
      return counted(outbound, id, other.id)
    }
  } as unknown as MeshqLibp2p
  const sync = new SyncService({ host, ledger, self: id, allowed: () => true })
  const made = { id, ledger, sync, links }
  replicas.set(id, made)
  await sync.start()
  return made
}

async function link (a: Replica, b: Replica): Promise<void> {
  a.links.add(b.id)
  b.links.add(a.id)
  await a.sync.connect(b.id)
  await b.sync.connect(a.id) // the one with the smaller id opens the stream
}

/** Writes `count` jobs on a replica, one change at a time, each sent on its own. */
async function writeJobs (r: Replica, count: number): Promise<string[]> {
  const slots = await r.ledger.allocateJobIds(count)
  for (const { id } of slots) {
    await r.ledger.put([{ doc: segmentOf(id) as string, map: SegmentMap.jobs, key: id, value: { id } }])
    await new Promise(resolve => setTimeout(resolve, 15)) // pacing, not waiting: past the 10 ms merge of local changes
  }
  return slots.map(s => s.id)
}

const has = (r: Replica, id: string): boolean => {
  const jobs = r.ledger.doc(segmentOf(id) as string)?.doc[SegmentMap.jobs]
  return typeof jobs === 'object' && jobs[id] != null
}

describe('ledger sync relay', () => {
  it('brings what A writes to C through B where A and C have no link', async () => {
    const [a, b, c] = [await replica(true), await replica(false), await replica(false)]
    await link(a, b)
    await link(b, c)
    const ids = await writeJobs(a, 5)
    await waitFor(() => ids.every(id => has(c, id)), { what: 'the jobs to reach C through B' })
    expect(frames.get(`${a.id}>${c.id}`) ?? 0).toBe(0)
  })

  it('in a full mesh, does not send each change a peer wrote on to the others: they have it from the author', async () => {
    const [a, b, c] = [await replica(true), await replica(false), await replica(false)]
    await link(a, b)
    await link(b, c)
    await link(a, c)
    const [first] = await writeJobs(a, 1)
    await waitFor(() => has(b, first) && has(c, first), { what: 'the first job everywhere' })
    frames.clear()
    const started = performance.now()
    const ids = await writeJobs(a, 20)
    await waitFor(() => ids.every(id => has(b, id) && has(c, id)), { what: 'all 20 jobs everywhere' })
    const relayPeriods = Math.ceil((performance.now() - started) / RELAY_DELAY_MS) + 1
    const between = (frames.get(`${b.id}>${c.id}`) ?? 0) + (frames.get(`${c.id}>${b.id}`) ?? 0)
    // sent on as they came, B and C would each pass on all 20 changes and answer each other's (38
    // frames); merged, a relay each way per period, and the answers to them
    expect(between).toBeLessThan(Math.min(20, 4 * relayPeriods))
    expect(frames.get(`${a.id}>${b.id}`)).toBeGreaterThanOrEqual(20) // the author sends each change itself
  })
})

describe('catching up on documents sent whole', () => {
  it('takes in one at a time: each is settled (here: sealed) before the next is applied', async () => {
    const a = await replica(true, 2)
    const ids = await writeJobs(a, 6)
    const segments = [...new Set(ids.map(id => segmentOf(id) as string))]
    expect(segments).toHaveLength(3)
    for (const seg of segments) await a.ledger.seal(seg, [], [])
    const b = await replica(false, 2)
    // how many of the segments B holds live each time one has arrived whole
    const liveOnArrival: number[] = []
    b.ledger.onReceivedWhole(async seg => {
      liveOnArrival.push(segments.filter(s => b.ledger.doc(s) != null).length)
      await new Promise(resolve => setTimeout(resolve, 20)) // a slow seal: the next must wait for it
      await b.ledger.seal(seg, [], [])
    })
    await link(a, b)
    await waitFor(() => segments.every(seg => b.ledger.segmentList().some(info => info.id === seg && info.sealed)),
      { what: 'B to hold every segment, sealed' })
    expect(liveOnArrival).toEqual([1, 1, 1])
    expect(b.ledger.manifest()).toEqual(a.ledger.manifest())
  })
})
