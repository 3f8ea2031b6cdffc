import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Addresses kept per member: more are ignored. */
export const MAX_MEMBER_ADDRS = 16
const MAX_ADDR_LENGTH = 512

/**
 * Parses a member's addresses, dropping every one that is not a string libp2p can parse. Member
 * addresses come from peers (join requests, replicated facts): a bad one must be skipped, never
 * thrown, or one malformed fact would take every node down on every start.
 */
export function parseAddrs (list: unknown): Multiaddr[] {
  if (!Array.isArray(list)) return []
  const addrs: Multiaddr[] = []
  for (const text of list) {
    if (addrs.length >= MAX_MEMBER_ADDRS) break
    if (typeof text !== 'string' || text.length > MAX_ADDR_LENGTH) continue
    try {
      const addr = multiaddr(text)
      addr.getComponents()
      addrs.push(addr)
    } catch { /* not a valid multiaddr: skipped */ }
  }
  return addrs
}

/** The valid addresses of a list, as strings. */
export function validAddrs (list: unknown): string[] {
  return parseAddrs(list).map(a => a.toString())
}
