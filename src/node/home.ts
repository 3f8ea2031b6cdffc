import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { SOCKET_NAME } from '../api/protocol.js'
import type { PeerIdString } from '../types.js'
import { decodeJson, encodeJson } from '../storage/store.js'
import { openLevelStore } from '../storage/level-store.js'
import type { KVStore } from '../storage/store.js'
import { UsageError } from '../errors.js'
import type { JoinToken } from '../net/membership.js'

/** The cluster this node belongs to: its id and its pre-shared key (for libp2p's private network). */
export interface ClusterConfig {
  id: string
  /** base64 of the pre-shared key. */
  psk: string
  createdAt: number
}

export interface Home {
  dir: string
  store: KVStore
  key: PrivateKey
  self: PeerIdString
  cluster: ClusterConfig
  /** True when this start created the cluster (the node founds it). */
  founded: boolean
  /** True when the node is joining with a token: the cluster config is saved once admitted. */
  joining: boolean
  socketPath: string
}

/** Where a node keeps things, under its home directory. */
export const homePaths = (dir: string): { ledger: string, socket: string, apiToken: string } => ({
  ledger: join(dir, 'ledger'),
  socket: join(dir, SOCKET_NAME),
  apiToken: join(dir, 'api-token')
})

/**
 * Opens (or creates) a node's home: the store (locked: one node per home), the node's identity
 * key, and the cluster config. A home with no cluster founds a new one.
 */
export async function openHome (dir: string, join?: JoinToken): Promise<Home> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await chmod(dir, 0o700) // the identity and the cluster key live here
  const paths = homePaths(dir)
  const store = await openLevelStore(paths.ledger)
  try {
    const key = await loadOrCreateKey(store)
    let cluster = await readJson<ClusterConfig>(store, 'cfg:cluster')
    const self = peerIdFromPrivateKey(key).toString() as PeerIdString
    const base = { dir, store, key, self, socketPath: paths.socket }
    if (cluster != null) {
      if (join != null && join.cluster !== cluster.id) {
        throw new UsageError(`this home belongs to cluster ${cluster.id}; the token is for cluster ${join.cluster} (use another --home)`)
      }
      return { ...base, cluster, founded: false, joining: false }
    }
    if (join != null) return { ...base, cluster: { id: join.cluster, psk: join.psk, createdAt: Date.now() }, founded: false, joining: true }
    cluster = { id: randomBytes(8).toString('hex'), psk: randomBytes(32).toString('base64'), createdAt: Date.now() }
    await saveCluster(store, cluster)
    return { ...base, cluster, founded: true, joining: false }
  } catch (err) {
    await store.close()
    throw err
  }
}

export async function saveCluster (store: KVStore, cluster: ClusterConfig): Promise<void> {
  await store.batch([{ key: 'cfg:cluster', value: encodeJson(cluster) }], { sync: true })
}

async function loadOrCreateKey (store: KVStore): Promise<PrivateKey> {
  const saved = await store.get('cfg:identity')
  if (saved != null) return privateKeyFromProtobuf(saved)
  const key = await generateKeyPair('Ed25519')
  await store.batch([{ key: 'cfg:identity', value: privateKeyToProtobuf(key) }], { sync: true })
  return key
}

async function readJson<T> (store: KVStore, key: string): Promise<T | undefined> {
  const bytes = await store.get(key)
  return bytes == null ? undefined : decodeJson<T>(bytes)
}

/** The bearer token of the TCP control API, created on first use, readable by the owner only. */
export async function apiToken (dir: string): Promise<string> {
  const file = homePaths(dir).apiToken
  const existing = await readFile(file, 'utf8').catch(() => undefined)
  if (existing != null && existing.trim() !== '') return existing.trim()
  const token = randomBytes(24).toString('base64url')
  await writeFile(file, token + '\n', { mode: 0o600 })
  return token
}
