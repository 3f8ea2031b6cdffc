/**
 * A peer with bad intent, built from meshq's own libp2p stack: for the hostile-peer suite and the
 * fuzzing of a real node's peer protocols.
 */
import { expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import { ok } from './cluster.js'
import type { TestNode } from './cluster.js'
import { agentString, localProtocol } from '../src/net/handshake.js'
import { createHost } from '../src/net/p2p.js'
import type { MeshqLibp2p } from '../src/net/p2p.js'
import { decodeToken } from '../src/net/membership.js'
import type { JoinToken } from '../src/net/membership.js'
import { JOIN_PROTOCOL } from '../src/net/join.js'

/** A started libp2p host holding the cluster key of `token`, talking only to peers `allowPeer` lets in; the caller stops it. */
export async function createIntruder (token: JoinToken, allowPeer: (peer: string) => boolean = () => true): Promise<MeshqLibp2p> {
  const host = await createHost({
    privateKey: await generateKeyPair('Ed25519'),
    psk: Buffer.from(token.psk, 'base64'),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    allowPeer: peer => allowPeer(peer.toString()),
    userAgent: agentString(localProtocol()) // it passes the version handshake
  })
  await host.start()
  return host
}

/** A fresh invite of `node`, decoded. */
export async function tokenOf (node: TestNode): Promise<JoinToken> {
  return decodeToken((await ok(node.home, ['invite'])).trim())
}

/** Presents an invite over `/meshq/join/1` through `through` (default: the token's node) and returns the answer. */
export async function tryJoin (host: MeshqLibp2p, token: JoinToken, through = token.addrs[0], addrs: unknown[] = []): Promise<{ ok: boolean, error?: string }> {
  const join = lpStream(await host.dialProtocol(multiaddr(through), JOIN_PROTOCOL))
  await join.write(new TextEncoder().encode(JSON.stringify({ invite: token.invite, secret: token.secret, addrs })))
  return JSON.parse(new TextDecoder().decode((await join.read()).subarray()))
}

/** Joins the cluster for real, through the token's node, giving `addrs` as its own addresses. */
export async function joinWith (host: MeshqLibp2p, token: JoinToken, addrs: unknown[] = []): Promise<void> {
  expect(await tryJoin(host, token, token.addrs[0], addrs)).toEqual({ ok: true })
}
