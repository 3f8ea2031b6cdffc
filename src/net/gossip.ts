/**
 * The one place that names the gossipsub implementation. `@libp2p/gossipsub` is the libp2p 3 port
 * of ChainSafe's gossipsub; when `@chainsafe/libp2p-gossipsub` supports libp2p 3 again, switching
 * back is a change of this import.
 */
import { createHash } from 'node:crypto'
import { gossipsub } from '@libp2p/gossipsub'
import type { GossipsubOpts } from '@libp2p/gossipsub'
export type { GossipSub, Message as GossipMessage } from '@libp2p/gossipsub'
export { TopicValidatorResult } from '@libp2p/gossipsub'

type RpcMessage = Parameters<GossipsubOpts['fastMsgIdFn']>[0]

/**
 * A digest of every field of a received message, signature included. gossipsub looks it up before
 * it checks the signature: a copy of a message already taken in (each message arrives once from
 * its author, floodPublish, and again from every mesh peer that forwards it: about 4 copies in 5
 * nodes) is dropped as a duplicate without a second Ed25519 verification. A message that differs
 * in any byte has another digest and is checked in full; its spec'ed id (author and seqno) then
 * decides whether it is a duplicate, as without this.
 */
export function fastMessageId (message: RpcMessage): string {
  const hash = createHash('sha256')
  for (const field of [message.from, message.seqno, Buffer.from(message.topic), message.data, message.signature, message.key]) {
    const bytes = field ?? new Uint8Array(0)
    const length = Buffer.alloc(4)
    length.writeUInt32BE(bytes.length)
    hash.update(length).update(bytes)
  }
  return hash.digest('base64')
}

export function pubsub (): ReturnType<typeof gossipsub> {
  return gossipsub({
    // meshq validates every message itself (membership, schema, replays)
    globalSignaturePolicy: 'StrictSign',
    allowPublishToZeroTopicPeers: true,
    emitSelf: false,
    // small meshes: send our own messages to every peer subscribed, not only the mesh
    floodPublish: true,
    fastMsgIdFn: fastMessageId,
    // gossipsub's peer score counts peers sharing one IP address against each of them beyond 10
    // (-5 x surplus squared): with more than 15 nodes on one host (or behind one NAT address),
    // every peer fell below the graylist threshold (-80) and each node ignored every message of
    // every other, so no status arrived and no mesh of 20 nodes formed. Every peer here has the
    // cluster key and is a member; IP addresses say nothing about sybils
    scoreParams: { IPColocationFactorWeight: 0 }
  })
}
