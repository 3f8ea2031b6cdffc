import createDebug from 'debug'
import type { Connection, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import type { LedgerFrontier } from '../crdt/frontier.js'
import type { MeshqLibp2p } from './p2p.js'

const log = createDebug('meshq:heads')

export const HEADS_PROTOCOL = '/meshq/heads/1'
/** Largest frontier a peer may send: thousands of sealed segments and open documents fit. */
const MAX_FRONTIER_BYTES = 4 * 1024 * 1024
const HEAD = /^[0-9a-f]{64}$/
const DOC = /^(meta|[a-z2-7]{6})$/

export function parseFrontier (bytes: Uint8Array): LedgerFrontier | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(bytes))
    const open = value?.open
    const sealed = value?.sealed
    const validOpen = open != null && typeof open === 'object' && !Array.isArray(open) &&
      Object.entries(open).every(([doc, heads]) =>
        DOC.test(doc) && Array.isArray(heads) && heads.every(h => typeof h === 'string' && HEAD.test(h)))
    const validSealed = Array.isArray(sealed) && sealed.every(doc => typeof doc === 'string' && DOC.test(doc))
    return validOpen && validSealed ? { open, sealed } : undefined
  } catch {
    return undefined
  }
}

export interface HeadsInit {
  host: MeshqLibp2p
  /** This replica's frontier, served to members. */
  frontier: () => LedgerFrontier
  allowed: (peer: string) => boolean
}

/**
 * `/meshq/heads/1`: a member asks what this node holds right now, and later waits until its own
 * replica covers it, so that a read on one host agrees with a write acknowledged on another.
 */
export class HeadsService {
  constructor (private readonly init: HeadsInit) {}

  async start (): Promise<void> {
    await this.init.host.handle(HEADS_PROTOCOL, (stream, connection) => { void this.answer(stream, connection) })
  }

  /** The peer's frontier now; throws if it cannot be asked. */
  async ask (peer: string, signal: AbortSignal): Promise<LedgerFrontier> {
    const stream = await this.init.host.dialProtocol(peerIdFromString(peer), HEADS_PROTOCOL, { signal })
    try {
      const frontier = parseFrontier((await lpStream(stream, { maxDataLength: MAX_FRONTIER_BYTES }).read({ signal })).subarray())
      if (frontier == null) throw new Error('malformed frontier')
      return frontier
    } finally {
      stream.abort(new Error('done'))
    }
  }

  private async answer (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    try {
      if (!this.init.allowed(peer)) throw new Error('not a member')
      await lpStream(stream, { maxDataLength: MAX_FRONTIER_BYTES }).write(new TextEncoder().encode(JSON.stringify(this.init.frontier())))
      await stream.close()
    } catch (err) {
      log('heads for %s: %s', peer, (err as Error).message)
      stream.abort(err as Error)
    }
  }
}
