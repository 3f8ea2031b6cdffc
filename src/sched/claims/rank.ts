import { createHash } from 'node:crypto'

/** Rendezvous rank of a peer for a job: the peer with the lowest hash of (job, peer) claims first. */
export function claimRank (job: string, peer: string): string {
  return createHash('sha256').update(`${job}\n${peer}`).digest('hex')
}

/** Keys of votes and claims: one job at one epoch. */
export const voteKey = (job: string, epoch: number): string => `${job}:${epoch}`

/** Votes, claims and epochs remembered per map, oldest forgotten first: far more than can be in flight. */
export const MAX_REMEMBERED = 100_000

/** Sets `key` last in `map` (the newest), dropping the oldest entry past MAX_REMEMBERED. */
export function remember<K, V> (map: Map<K, V>, key: K, value: V): void {
  map.delete(key)
  map.set(key, value)
  if (map.size > MAX_REMEMBERED) map.delete(map.keys().next().value as K)
}
