import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import { json, meshq, ok, startCluster, startNode } from './cluster.js'
import type { TestNode } from './cluster.js'
import { waitFor } from './helpers.js'
import { agentString, localProtocol } from '../src/node/handshake.js'
import { createHost } from '../src/node/p2p.js'
import type { MeshqLibp2p } from '../src/node/p2p.js'
import { decodeToken } from '../src/node/membership.js'
import type { JoinToken } from '../src/node/membership.js'
import { JOIN_PROTOCOL, LOGS_PROTOCOL } from '../src/node/mesh.js'
import { FrameType, SYNC_PROTOCOL, encodeFrame } from '../src/node/sync.js'
import type { JobView, PeerView } from '../src/types.js'

let nodes: TestNode[] = []
const hosts: MeshqLibp2p[] = []
/** Nodes of clusters of their own, started by single tests. */
const others: TestNode[] = []
beforeAll(async () => { nodes = await startCluster(2, ['--slots', '2']) })
afterAll(async () => {
  for (const h of hosts) await h.stop()
  for (const n of [...nodes, ...others]) await n.cleanup()
})

/** A libp2p host built from meshq's own stack, holding the cluster key: an insider with bad intent. */
async function intruder (token: JoinToken, allowPeer: (peer: string) => boolean = () => true): Promise<MeshqLibp2p> {
  const host = await createHost({
    privateKey: await generateKeyPair('Ed25519'),
    psk: Buffer.from(token.psk, 'base64'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    allowPeer: peer => allowPeer(peer.toString()),
    userAgent: agentString(localProtocol()) // it passes the version handshake
  })
  await host.start()
  hosts.push(host)
  return host
}

async function tokenOf (node: TestNode): Promise<JoinToken> {
  return decodeToken((await ok(node.home, ['invite'])).trim())
}

/** Joins the cluster for real, through the token's node, giving `addrs` as its own addresses. */
async function joinWith (host: MeshqLibp2p, token: JoinToken, addrs: unknown[] = []): Promise<void> {
  const join = lpStream(await host.dialProtocol(multiaddr(token.addrs[0]), JOIN_PROTOCOL))
  await join.write(new TextEncoder().encode(JSON.stringify({ invite: token.invite, secret: token.secret, addrs })))
  expect(JSON.parse(new TextDecoder().decode((await join.read()).subarray()))).toEqual({ ok: true })
}

/** A job submitted on one node runs and is seen done on the other: the cluster still works. */
async function clusterWorks (): Promise<void> {
  const id = (await ok(nodes[0].home, ['sub', '--', 'true'])).trim()
  await waitFor(async () => (await json<JobView>(nodes[1].home, ['show', id])).state === 'done', { what: 'a job to run after the attack' })
}

/** Evicts an intruder that joined, so that the quorum is again the two real nodes. */
async function evict (host: MeshqLibp2p): Promise<void> {
  const id = host.peerId.toString()
  await waitFor(async () => (await json<PeerView[]>(nodes[0].home, ['peers'])).some(p => p.id === id), { what: 'the member to be known' })
  await ok(nodes[0].home, ['evict', id])
  await waitFor(async () => !(await json<PeerView[]>(nodes[1].home, ['peers'])).some(p => p.id === id), { what: 'the eviction to reach every node' })
}

describe('a peer with the cluster key', () => {
  it('that is not a member gets no ledger and is disconnected', async () => {
    const token = await tokenOf(nodes[0])
    const host = await intruder(token)
    const target = multiaddr(token.addrs[0])
    await host.dial(target)
    const stream = await host.dialProtocol(target, SYNC_PROTOCOL).catch(() => undefined)
    if (stream != null) {
      const received = await lpStream(stream).read({ signal: AbortSignal.timeout(5000) }).then(() => true, () => false)
      expect(received).toBe(false)
    }
    await waitFor(() => host.getPeers().length === 0, { what: 'the non-member to be disconnected', timeout: 15_000 })
    await clusterWorks()
  })

  it('that is a member but sends malformed, oversized and replayed messages does not crash or stall the others', async () => {
    const token = await tokenOf(nodes[0])
    const host = await intruder(token)
    const target = multiaddr(token.addrs[0])
    await joinWith(host, token) // for real, then misbehave

    const frames = [
      new Uint8Array([99, 1, 2, 3]), // unknown frame type
      encodeFrame(FrameType.sync, '../../etc', new Uint8Array([1, 2])), // bad document id
      encodeFrame(FrameType.sync, 'meta', new Uint8Array(512).fill(0x42)), // garbage sync message
      encodeFrame(FrameType.blob, 'abcdef', new Uint8Array(2048).fill(7)), // garbage blob
      encodeFrame(FrameType.manifest, '', new TextEncoder().encode('{not json'))
    ]
    for (const frame of frames) {
      const sync = lpStream(await host.dialProtocol(target, SYNC_PROTOCOL))
      await sync.write(frame).catch(() => {})
    }
    // a length prefix announcing far more than any frame may hold
    const raw = await host.dialProtocol(target, SYNC_PROTOCOL)
    raw.send(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]))

    const { pubsub } = host.services
    const claims = `meshq/${token.cluster}/claims/2`
    pubsub.subscribe(claims)
    await waitFor(() => pubsub.getSubscribers(claims).length > 0, { what: 'gossip mesh with the intruder' })
    const replayed = new TextEncoder().encode(JSON.stringify({ v: 2, peer: host.peerId.toString(), boot: 'x', seq: 1, claims: [['zzzzzz-1', 1, 3000]], renews: [], releases: [], withdraws: [], votes: [], acks: [] }))
    for (const data of [new TextEncoder().encode('garbage'), new Uint8Array(300 * 1024), replayed, replayed]) {
      await pubsub.publish(claims, data).catch(() => {})
    }

    await clusterWorks()
    for (const node of nodes) expect((await meshq(node.home, ['ls'])).code).toBe(0)
    await evict(host)
  })

  it('that joins with a malformed address does not take any node down', async () => {
    const token = await tokenOf(nodes[0])
    const host = await intruder(token)
    await joinWith(host, token, ['/ip4/127.0.0.1/tcp/1/bogus', 42, '/ip4/999.1.1.1/tcp/1', '/ip4/127.0.0.1/tcp/9'])
    await host.stop() // gone: every node now redials it, from its member record
    const id = host.peerId.toString()
    const known = async (node: TestNode): Promise<PeerView | undefined> => (await json<PeerView[]>(node.home, ['peers'])).find(p => p.id === id)
    await waitFor(async () => (await known(nodes[1])) != null, { what: 'the member to be known everywhere' })
    expect((await known(nodes[1]))?.addrs).toEqual(['/ip4/127.0.0.1/tcp/9'])
    // every node must stay up through several redial rounds (every 2 s): before the fix, each died in the first
    for (const end = Date.now() + 6000; Date.now() < end; await new Promise(resolve => setTimeout(resolve, 200))) {
      expect(nodes.map(n => n.process.exitCode)).toEqual(nodes.map(() => null))
    }
    await evict(host) // a member gone for good counts in every quorum until it is evicted
    await clusterWorks()
  })

  it('that asks for the output of a job id with a path in it gets nothing', async () => {
    const token = await tokenOf(nodes[0])
    const host = await intruder(token)
    await joinWith(host, token)
    // a file outside the output directory, named like the output of an attempt
    await mkdir(join(nodes[0].home, 'stolen'))
    await writeFile(join(nodes[0].home, 'stolen', '7.stdout'), 'secret')
    const logs = lpStream(await host.dialProtocol(multiaddr(token.addrs[0]), LOGS_PROTOCOL))
    await logs.write(new TextEncoder().encode(JSON.stringify({ job: '../stolen', epoch: 7, stream: 'stdout', follow: false })))
    // before the fix, the first frame was the file's content
    await expect(logs.read({ signal: AbortSignal.timeout(5000) })).rejects.toThrow()
    await evict(host)
  })

  it('that was evicted is disconnected and refused from then on', async () => {
    const token = await tokenOf(nodes[0])
    const host = await intruder(token)
    await joinWith(host, token)
    const id = host.peerId.toString()
    await waitFor(async () => (await json<PeerView[]>(nodes[1].home, ['peers'])).some(p => p.id === id), { what: 'the member to be known everywhere' })
    await ok(nodes[1].home, ['evict', id])
    await waitFor(async () => !(await json<PeerView[]>(nodes[0].home, ['peers'])).some(p => p.id === id), { what: 'the eviction to reach the founder' })
    await waitFor(() => host.getPeers().length === 0, { what: 'the evicted peer to be disconnected', timeout: 15_000 })
    // the connection gate refuses it at once: well before a non-member's 5 s of grace
    await host.dial(multiaddr(token.addrs[0]), { signal: AbortSignal.timeout(5000) }).catch(() => {})
    await waitFor(() => host.getPeers().length === 0, { what: 'the redial to be refused', timeout: 2500, interval: 20 })
    const sync = await host.dialProtocol(multiaddr(token.addrs[0]), SYNC_PROTOCOL, { signal: AbortSignal.timeout(3000) }).then(() => 'opened', () => 'refused')
    expect(sync).toBe('refused')
  })
})

describe('a key holder that is not a member', () => {
  it('cannot keep a silent member looking alive by relaying its status gossip, which would stall every claim', async () => {
    // a two-member cluster: a real node, and a member that stops talking to it. Alone, the node
    // runs jobs once its only peer has been silent for the alone window (half the TTR): unless it
    // keeps hearing that peer's status, here relayed through a key holder that is not a member.
    const node = await startNode()
    others.push(node)
    const token = await tokenOf(node)
    const nodeId = token.addrs[0].split('/p2p/')[1]
    let shunning = false
    const member = await intruder(token, peer => !(shunning && peer === nodeId))
    await joinWith(member, token) // no addresses: the node cannot dial it back
    shunning = true
    await member.hangUp(multiaddr(token.addrs[0]))
    const relay = await intruder(token)
    const topic = `meshq/${token.cluster}/status/1`
    relay.services.pubsub.subscribe(topic)
    let relayed = 0
    relay.services.pubsub.addEventListener('message', event => { if (event.detail.topic === topic) relayed++ })
    await relay.dial(member.getMultiaddrs()[0])

    const boot = 'replayer'
    let seq = 0
    let connections = 0
    const gossip = setInterval(() => {
      const status = { peer: member.peerId.toString(), slots: 4, running: 0, draining: false, tags: [], boot, seq: ++seq, at: Date.now() }
      void member.services.pubsub.publish(topic, new TextEncoder().encode(JSON.stringify(status))).catch(() => {})
      // the node hangs up on a non-member after 5 s: the relay comes straight back
      if (relay.getConnections().every(c => c.remotePeer.toString() !== nodeId)) {
        void relay.dial(multiaddr(token.addrs[0])).then(() => { connections++ }, () => {})
      }
    }, 250)
    try {
      const id = (await ok(node.home, ['sub', '--ttr', '20s', '--', 'true'])).trim()
      // before the fix the relayed status kept the member live, the claim waited for its vote, and the job stayed ready
      await waitFor(async () => (await json<JobView>(node.home, ['show', id])).state === 'done', { what: 'the job to run alone', timeout: 40_000 })
      expect(relayed).toBeGreaterThan(0)
      expect(connections).toBeGreaterThan(0)
    } finally {
      clearInterval(gossip)
    }
  })
})
