/**
 * The one place that names the gossipsub implementation. `@libp2p/gossipsub` is the libp2p 3 port
 * of ChainSafe's gossipsub; when `@chainsafe/libp2p-gossipsub` supports libp2p 3 again, switching
 * back is a change of this import.
 */
import { gossipsub } from '@libp2p/gossipsub'
export type { GossipSub, Message as GossipMessage } from '@libp2p/gossipsub'
export { TopicValidatorResult } from '@libp2p/gossipsub'

export function pubsub (): ReturnType<typeof gossipsub> {
  return gossipsub({
    // meshq validates every message itself (membership, schema, replays)
    globalSignaturePolicy: 'StrictSign',
    allowPublishToZeroTopicPeers: true,
    emitSelf: false,
    // small meshes: send our own messages to every peer subscribed, not only the mesh
    floodPublish: true
  })
}
