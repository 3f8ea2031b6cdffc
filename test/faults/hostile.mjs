/**
 * A hostile member: a libp2p host built from meshq's own stack (dist/), admitted with a real
 * invite, that then sends malformed, oversized, forged and replayed sync and gossip messages.
 * Loaded only by the hostile-member scenario (it pulls in libp2p).
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import { createHost } from '../../dist/net/p2p.js'
import { agentString, localProtocol } from '../../dist/net/handshake.js'
import { decodeToken } from '../../dist/net/membership.js'
import { JOIN_PROTOCOL } from '../../dist/net/join.js'
import { FrameType, SYNC_PROTOCOL, encodeFrame } from '../../dist/net/sync.js'

const text = value => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value))

/** Joins with `token` from address `ip` and returns the attacker. */
export async function hostileMember (token, ip) {
  const invite = decodeToken(token)
  const host = await createHost({
    privateKey: await generateKeyPair('Ed25519'),
    psk: Buffer.from(invite.psk, 'base64'),
    listen: [`/ip4/${ip}/tcp/0`],
    allowPeer: () => true,
    userAgent: agentString(localProtocol()) // it passes the version handshake, as a member would
  })
  await host.start()
  const target = multiaddr(invite.addrs[0])
  const join = lpStream(await host.dialProtocol(target, JOIN_PROTOCOL))
  await join.write(text({ invite: invite.invite, secret: invite.secret, addrs: [] }))
  const reply = JSON.parse(new TextDecoder().decode((await join.read()).subarray()))
  if (reply.ok !== true) throw new Error(`the hostile member was refused: ${reply.error}`)
  const claims = `meshq/${invite.cluster}/claims/1`
  host.services.pubsub.subscribe(claims)
  let seq = 0
  const self = host.peerId.toString()

  /** One volley at every peer in `addrs`; returns how many messages went out. */
  async function volley (addrs, victimPeer) {
    let sent = 0
    const frames = [
      new Uint8Array([99, 1, 2, 3]),
      encodeFrame(FrameType.sync, '../../etc', new Uint8Array([1, 2])),
      encodeFrame(FrameType.sync, 'meta', new Uint8Array(512).fill(0x42)),
      encodeFrame(FrameType.blob, 'abcdef', new Uint8Array(2048).fill(7)),
      encodeFrame(FrameType.manifest, '', text('{not json')),
      encodeFrame(FrameType.manifest, '', text({ meta: 'x'.repeat(100), zzzzzz: 'y' }))
    ]
    for (const addr of addrs) {
      for (const frame of frames) {
        const stream = await host.dialProtocol(multiaddr(addr), SYNC_PROTOCOL, { signal: AbortSignal.timeout(5000) }).catch(() => undefined)
        if (stream == null) continue
        await lpStream(stream).write(frame).catch(() => {})
        sent++
      }
      // a length prefix announcing far more than any frame may hold
      const raw = await host.dialProtocol(multiaddr(addr), SYNC_PROTOCOL, { signal: AbortSignal.timeout(5000) }).catch(() => undefined)
      if (raw != null) { raw.send(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3])); sent++ }
    }
    const batch = { v: 1, peer: self, boot: 'x', seq: ++seq, claims: [['zzzzzz-1', 1]], renews: [], releases: [] }
    const forged = { ...batch, peer: victimPeer, claims: [], renews: [['zzzzzz-2', 9, 1000]] }
    for (const data of [text('garbage'), new Uint8Array(300 * 1024), text(batch), text(batch), text(forged)]) {
      await host.services.pubsub.publish(claims, data).then(() => { sent++ }, () => {})
    }
    return sent
  }

  return { id: self, volley, stop: async () => { await host.stop() } }
}
