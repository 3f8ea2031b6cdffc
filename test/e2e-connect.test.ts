import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { json, meshq, ok, startCluster, startNode } from './cluster.js'
import type { TestNode } from './cluster.js'
import { waitFor } from './helpers.js'
import type { JobView, PeerView } from '../src/types.js'

let a: TestNode
let b: TestNode
/** The first processes own the temp homes; every process is killed at the end. */
const started: TestNode[] = []
beforeAll(async () => {
  [a, b] = await startCluster(2)
  started.push(a, b)
})
afterAll(async () => {
  for (const n of started.reverse()) await n.cleanup()
})

async function restart (node: TestNode): Promise<TestNode> {
  await node.kill('SIGTERM')
  const again = await startNode({ home: node.home })
  started.push(again)
  return again
}

const selfRow = async (node: TestNode): Promise<PeerView> => (await json<PeerView[]>(node.home, ['peers'])).find(p => p.self) as PeerView
const otherRow = async (node: TestNode): Promise<PeerView> => (await json<PeerView[]>(node.home, ['peers'])).find(p => !p.self) as PeerView

describe('meshq connect', () => {
  it('brings back together two nodes that both restarted on new ports while the other was down', async () => {
    const firstAddrs = (await selfRow(a)).addrs
    await a.kill('SIGTERM')
    b = await restart(b) // a new port that a never hears of
    await b.kill('SIGTERM')
    a = await startNode({ home: a.home })
    started.push(a)
    b = await startNode({ home: b.home })
    started.push(b)
    const [aSelf, bSelf] = [await selfRow(a), await selfRow(b)]
    expect(aSelf.addrs).not.toEqual(firstAddrs)
    // each knows only where the other was
    expect((await otherRow(b)).addrs).not.toEqual(aSelf.addrs)
    expect((await otherRow(a)).connected).toBe(false)

    const connectedAt = Date.now()
    expect((await ok(b.home, ['connect', aSelf.addrs[0]])).trim()).toBe(`connected to ${aSelf.id}`)
    await waitFor(async () => (await otherRow(a)).connected && (await otherRow(b)).connected, { what: 'both connected', timeout: 10_000, interval: 200 })
    expect(Date.now() - connectedAt).toBeLessThan(10_000)
    // each has the other's new addresses, from its own record, for the next redial
    await waitFor(async () => JSON.stringify((await otherRow(a)).addrs) === JSON.stringify(bSelf.addrs), { what: 'a to learn b\'s new addresses' })
    await waitFor(async () => JSON.stringify((await otherRow(b)).addrs) === JSON.stringify(aSelf.addrs), { what: 'b to learn a\'s new addresses' })
    await waitFor(async () => (await otherRow(a)).state === 'up' && (await otherRow(b)).state === 'up', { what: 'both up' })
    const id = (await ok(a.home, ['sub', '--', 'true'])).trim()
    await waitFor(async () => (await json<JobView>(b.home, ['show', id])).state === 'done', { what: 'a job submitted on a seen done on b' })
  })

  it('a node that restarts on a new port finds the member at its remembered address, and tells it the new one', async () => {
    a = await restart(a)
    const aSelf = await selfRow(a)
    await waitFor(async () => (await otherRow(a)).connected && (await otherRow(b)).state === 'up', { what: 'a to redial b from its ledger' })
    await waitFor(async () => JSON.stringify((await otherRow(b)).addrs) === JSON.stringify(aSelf.addrs), { what: 'b to learn a\'s new addresses' })
  })

  it('refuses an address that does not parse (exit 2), one where nothing answers, and a peer that is not a member (exit 1)', async () => {
    const bad = await meshq(b.home, ['connect', 'localhost:7746'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/not a multiaddr: 'localhost:7746'/)
    expect((await meshq(b.home, ['connect'])).code).toBe(2)

    const closed = await meshq(b.home, ['connect', '/ip4/127.0.0.1/tcp/1'])
    expect(closed.code).toBe(1)
    expect(closed.stderr).toMatch(/cannot reach \/ip4\/127\.0\.0\.1\/tcp\/1/)

    const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const notMember = await meshq(b.home, ['connect', `/ip4/127.0.0.1/tcp/1/p2p/${stranger}`])
    expect(notMember.code).toBe(1)
    expect(notMember.stderr).toMatch(/is not a member of this cluster/)

    // without /p2p/, whoever answers must turn out to be a member
    const bare = (await selfRow(a)).addrs[0].split('/p2p/')[0]
    expect((await ok(b.home, ['connect', bare])).trim()).toBe(`connected to ${(await selfRow(a)).id}`)

    const self = await meshq(b.home, ['connect', (await selfRow(b)).addrs[0]])
    expect(self.code).toBe(2)
    expect(self.stderr).toMatch(/is this node/)
  })
})
