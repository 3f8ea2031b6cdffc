import { createLibp2p } from 'libp2p'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import type { GossipSub } from './gossip.js'
import { pubsub } from './gossip.js'
import { ListenError } from '../errors.js'

export type MeshqLibp2p = Libp2p<{ pubsub: GossipSub, identify: unknown, ping: unknown }>

export interface HostInit {
  privateKey: PrivateKey
  /** The cluster's pre-shared key: 32 bytes. */
  psk: Uint8Array
  listen: string[]
  /** Whether a peer may connect at all (evicted peers may not). */
  allowPeer: (peer: PeerId) => boolean
  /** What identify tells peers about this node: its meshq and protocol versions (see handshake.ts). */
  userAgent: string
}

/** How often libp2p pings every connection (see createHost). */
export const PING_INTERVAL_MS = 5000
/** How long an inbound connection may take to prove it has the cluster key, finish Noise and yamux. */
export const UPGRADE_TIMEOUT_MS = 3000
/** Inbound connections still in their handshake, at most (libp2p's default: 10). */
export const MAX_PENDING_INBOUND = 64

/** libp2p's swarm key format for a 32-byte pre-shared key. */
export function swarmKey (psk: Uint8Array): Uint8Array {
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${Buffer.from(psk).toString('hex')}`)
}

/** The libp2p host of a node: TCP, the cluster key (pnet), Noise, yamux, identify, ping, gossipsub. */
export async function createHost (init: HostInit): Promise<MeshqLibp2p> {
  return await createLibp2p({
    privateKey: init.privateKey,
    nodeInfo: { userAgent: init.userAgent },
    addresses: { listen: init.listen },
    transports: [tcp()],
    // a peer without the key fails here, before any meshq protocol (libp2p passes its own
    // deadline, `inboundUpgradeTimeout` below, to inbound handshakes, so this applies to dials only)
    connectionProtector: preSharedKey({ psk: swarmKey(init.psk), timeout: UPGRADE_TIMEOUT_MS }),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      // A socket that never completes the handshake holds a pending slot until this deadline
      // (libp2p's default: 10 s): with 10 slots, a few silent sockets a second from an outsider
      // kept every member out. One host may still open only 5 connections a second
      // (libp2p's inboundConnectionThreshold), so it cannot fill the slots alone.
      inboundUpgradeTimeout: UPGRADE_TIMEOUT_MS,
      maxIncomingPendingConnections: MAX_PENDING_INBOUND
    },
    connectionGater: {
      denyDialPeer: async peer => !init.allowPeer(peer),
      denyInboundEncryptedConnection: async peer => !init.allowPeer(peer),
      denyOutboundEncryptedConnection: async peer => !init.allowPeer(peer)
    },
    // ping every connection every 5 s (libp2p's default is 10 s) and give up after 5 to 10 s
    // (libp2p's adaptive timeout), so a connection over a dead link is closed within 15 s and
    // redialled soon after the link comes back. Every ping opens a yamux stream and negotiates
    // its protocol, on every connection of a full mesh: at 2 s, pings cost an idle node of five
    // about 0.8 % of a core (bench/idle.js); status gossip keeps peers' liveness in the meantime
    connectionMonitor: { pingInterval: PING_INTERVAL_MS, pingTimeout: { maxTimeout: 10_000 } },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: pubsub()
    }
  }) as unknown as MeshqLibp2p
}

/**
 * libp2p's error for addresses it could not listen on spans lines and names its own options; a
 * user needs the address, the reason and what to do.
 */
export function listenError (err: Error): Error {
  const failures = [...err.message.matchAll(/^\s*(\/\S+): \w*Error: (?:listen )?(\w+)/gm)].map(([, addr, code]) => ({ addr, code }))
  if (failures.length === 0) return err
  const reasons: Record<string, string> = {
    EADDRINUSE: 'the address is in use (another meshq node, or another program, listens there)',
    EADDRNOTAVAIL: 'this host has no such address',
    EACCES: 'no permission (ports below 1024 need root)'
  }
  const what = failures.map(({ addr, code }) => `${addr}: ${reasons[code] ?? code}`).join('; ')
  return new ListenError(`cannot listen on ${what}; choose other addresses with --listen, e.g. --listen /ip4/0.0.0.0/tcp/7747`)
}
