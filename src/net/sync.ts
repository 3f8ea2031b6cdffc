import * as A from '@automerge/automerge'
import createDebug from 'debug'
import type { Connection, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import type { LengthPrefixedStream } from '@libp2p/utils'
import type { Ledger } from '../crdt/ledger.js'
import { headsDigestOf, type FactDoc } from '../crdt/doc.js'
import type { MeshqLibp2p } from './p2p.js'
import { StorageError } from '../errors.js'

const log = createDebug('meshq:sync')

export const SYNC_PROTOCOL = '/meshq/sync/1'
/** Largest frame accepted from a peer: a sealed segment's blob fits many times over. */
export const MAX_SYNC_FRAME = 64 * 1024 * 1024
/** Offers of changed documents to a peer are merged over this long. */
const OFFER_DELAY_MS = 10
/**
 * Offers of changes received from another peer, to the rest, are merged over this long. Peers
 * are connected in a full mesh and the author sends its changes to every peer itself, so this
 * relay only matters where a link is missing; sent at once, every change would cost every node a
 * sync message on every session, and the heads exchanged in reply (work that grows with the
 * square of the node count, per job), where merged, a message per session per interval.
 */
export const RELAY_DELAY_MS = 500
/**
 * How often each side of a session sends its manifest again (anti-entropy). A document whose
 * digests differ in two manifests in a row is synced afresh, from an empty sync state: whatever
 * left the two sync states believing they agree, the replicas converge.
 */
const ANTI_ENTROPY_MS = 5000
/** A session that has received nothing for this long (not even a manifest) is closed and reopened. */
const SILENT_SESSION_MS = 4 * ANTI_ENTROPY_MS

export const FrameType = { manifest: 1, sync: 2, blob: 3 } as const
type FrameType = typeof FrameType[keyof typeof FrameType]

const DOC_ID = /^(meta|[a-z2-7]{6})$/

export class ProtocolError extends Error {
  override name = 'ProtocolError'
}

/** A frame: type, document id, payload. Layout: [type u8][id length u8][id][payload]. */
export function encodeFrame (type: FrameType, doc: string, payload: Uint8Array): Uint8Array {
  const id = Buffer.from(doc)
  const out = new Uint8Array(2 + id.length + payload.length)
  out[0] = type
  out[1] = id.length
  out.set(id, 2)
  out.set(payload, 2 + id.length)
  return out
}

export function decodeFrame (bytes: Uint8Array): { type: FrameType, doc: string, payload: Uint8Array } {
  if (bytes.length < 2) throw new ProtocolError('frame too short')
  const type = bytes[0] as FrameType
  if (!Object.values(FrameType).includes(type)) throw new ProtocolError(`unknown frame type ${type}`)
  const end = 2 + bytes[1]
  if (bytes.length < end) throw new ProtocolError('frame truncated')
  const doc = Buffer.from(bytes.subarray(2, end)).toString('utf8')
  if (type !== FrameType.manifest && !DOC_ID.test(doc)) throw new ProtocolError(`bad document id ${JSON.stringify(doc.slice(0, 20))}`)
  return { type, doc, payload: bytes.subarray(end) }
}

export interface SyncInit {
  host: MeshqLibp2p
  ledger: Ledger
  self: string
  /** Whether a peer may sync with this node. */
  allowed: (peer: string) => boolean
}

/**
 * Ledger replication over `/meshq/sync/1`: one stream per pair of peers (opened by the one with
 * the smaller id), one Automerge sync state per document on it, fresh for every stream. A
 * manifest of document heads starts each stream, so that identical documents cost nothing,
 * documents a peer lacks go over as one saved blob, and only differing ones run the sync protocol.
 */
export class SyncService {
  private readonly init: SyncInit
  private readonly sessions = new Map<string, SyncSession>()
  private unsubscribe?: () => void

  constructor (init: SyncInit) {
    this.init = init
  }

  async start (): Promise<void> {
    await this.init.host.handle(SYNC_PROTOCOL, (stream, connection) => { this.accept(stream, connection) }, { maxInboundStreams: 4 })
    this.unsubscribe = this.init.ledger.onChange((changes, origin) => {
      if (origin === 'load' && changes.length === 0) return
      const docs = new Set(changes.map(c => c.doc))
      // the session a remote change came in on answers at once (SyncSession.receiveSync)
      const delayMs = origin === 'remote' ? RELAY_DELAY_MS : OFFER_DELAY_MS
      for (const session of this.sessions.values()) for (const doc of docs) session.offer(doc, delayMs)
    })
  }

  async stop (): Promise<void> {
    this.unsubscribe?.()
    for (const session of this.sessions.values()) session.close()
    this.sessions.clear()
  }

  /** Opens the sync stream to a connected peer, if this node is the one that opens it. */
  async connect (peer: string): Promise<void> {
    if (this.sessions.has(peer) || peer === this.init.self || this.init.self > peer || !this.init.allowed(peer)) return
    try {
      const stream = await this.init.host.dialProtocol(peerIdFromString(peer), SYNC_PROTOCOL)
      this.run(peer, stream)
    } catch (err) {
      log('cannot open sync stream to %s: %s', peer, (err as Error).message)
    }
  }

  /** Whether every open session's peer is known to have this replica's version of a document. */
  delivered (doc: string): boolean {
    const handle = this.init.ledger.doc(doc)
    return handle == null || [...this.sessions.values()].every(session => session.has(doc, A.getHeads(handle.doc)))
  }

  disconnect (peer: string): void {
    this.sessions.get(peer)?.close()
    this.sessions.delete(peer)
  }

  private accept (stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer.toString()
    if (!this.init.allowed(peer)) {
      log('refusing sync from non-member %s', peer)
      stream.abort(new ProtocolError('not a member'))
      return
    }
    this.run(peer, stream)
  }

  private run (peer: string, stream: Stream): void {
    this.sessions.get(peer)?.close()
    const session = new SyncSession(peer, stream, this.init.ledger)
    this.sessions.set(peer, session)
    void session.run().finally(() => {
      if (this.sessions.get(peer) === session) this.sessions.delete(peer)
    })
  }
}

class SyncSession {
  private readonly states = new Map<string, A.SyncState>()
  private readonly lp: LengthPrefixedStream<Stream>
  /** Sends go out one at a time, in order. */
  private sending: Promise<void> = Promise.resolve()
  private closed = false
  private readonly dirty = new Set<string>()
  private offerTimer?: NodeJS.Timeout
  /** When the pending offers go out (performance.now()). */
  private offerDue = 0
  private entropyTimer?: NodeJS.Timeout
  /** Documents whose digests differed in the peer's last manifest. */
  private readonly differing = new Set<string>()
  /** The documents sent whole in this session, with the heads digest they had then. */
  private readonly blobsSent = new Map<string, string>()
  /**
   * The documents the peer sent whole, with their heads digest: while this replica's copy has the
   * same heads, the peer needs no sync message for it (the relay of the change it brought would
   * otherwise go back to the peer, whose answer made this replica load again a segment it had
   * sealed on arrival).
   */
  private readonly peerHolds = new Map<string, string>()
  /** When a frame last arrived (performance.now()). */
  private lastHeard = performance.now()

  constructor (readonly peer: string, private readonly stream: Stream, private readonly ledger: Ledger) {
    this.lp = lpStream(stream, { maxDataLength: MAX_SYNC_FRAME })
  }

  async run (): Promise<void> {
    try {
      this.sendManifest()
      this.entropyTimer = setInterval(() => { this.checkEntropy() }, ANTI_ENTROPY_MS)
      this.entropyTimer.unref()
      for (;;) {
        const frame = await this.lp.read()
        if (frame == null) break
        this.lastHeard = performance.now()
        await this.receive(decodeFrame(frame.subarray()))
      }
    } catch (err) {
      if (!this.closed) log('sync with %s ended: %s', this.peer, (err as Error).message)
    } finally {
      this.close()
    }
  }

  /** Whether the peer is known to have these heads of a document (they are shared heads of the sync). */
  has (doc: string, heads: A.Heads): boolean {
    const shared = new Set(this.states.get(doc)?.sharedHeads ?? [])
    return heads.every(head => shared.has(head))
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.offerTimer)
    clearInterval(this.entropyTimer)
    this.stream.abort(new ProtocolError('sync session closed'))
  }

  /**
   * Sends what the peer lacks of a document within `delayMs`: offers made meanwhile are merged, so
   * a burst of changes (or of replies) costs one sync message per document, not one each.
   */
  offer (doc: string, delayMs = OFFER_DELAY_MS): void {
    if (this.closed) return
    this.dirty.add(doc)
    const due = performance.now() + delayMs
    if (this.offerTimer != null && this.offerDue <= due) return
    clearTimeout(this.offerTimer)
    this.offerDue = due
    this.offerTimer = setTimeout(() => { this.sendOffers() }, delayMs)
  }

  private sendManifest (): void {
    this.send(FrameType.manifest, '', new TextEncoder().encode(JSON.stringify(this.ledger.manifest())))
  }

  /** Sends the manifest again; closes a session the peer has stopped answering (it is reopened). */
  private checkEntropy (): void {
    if (performance.now() - this.lastHeard > SILENT_SESSION_MS) {
      log('sync with %s: nothing heard for %d ms; closing the session', this.peer, SILENT_SESSION_MS)
      this.close()
      return
    }
    this.sendManifest()
  }

  private sendOffers (): void {
    this.offerTimer = undefined
    for (const doc of this.dirty) {
      const handle = this.ledger.doc(doc)
      if (handle == null || this.closed) continue
      const held = this.peerHolds.get(doc)
      this.peerHolds.delete(doc)
      if (held !== undefined && held === handle.headsDigest()) continue
      const [state, message] = A.generateSyncMessage(handle.doc, this.state(doc))
      this.states.set(doc, state)
      if (message != null) this.send(FrameType.sync, doc, message)
    }
    this.dirty.clear()
  }

  private state (doc: string): A.SyncState {
    return this.states.get(doc) ?? A.initSyncState()
  }

  private send (type: FrameType, doc: string, payload: Uint8Array): void {
    const frame = encodeFrame(type, doc, payload)
    this.sending = this.sending.then(async () => {
      if (!this.closed) await this.lp.write(frame)
    }).catch(err => {
      log('send to %s failed: %s', this.peer, (err as Error).message)
      this.close()
    })
  }

  private async receive (frame: { type: FrameType, doc: string, payload: Uint8Array }): Promise<void> {
    switch (frame.type) {
      case FrameType.manifest: return await this.receiveManifest(frame.payload)
      case FrameType.blob: return await this.receiveBlob(frame.doc, frame.payload)
      case FrameType.sync: return await this.receiveSync(frame.doc, frame.payload)
    }
  }

  private async receiveManifest (payload: Uint8Array): Promise<void> {
    let theirs: Record<string, string>
    try {
      theirs = JSON.parse(new TextDecoder().decode(payload))
      if (typeof theirs !== 'object' || theirs == null) throw new Error('not an object')
    } catch (err) {
      throw new ProtocolError(`bad manifest: ${(err as Error).message}`)
    }
    for (const [doc, heads] of Object.entries(this.ledger.manifest())) {
      if (theirs[doc] === heads) {
        this.differing.delete(doc)
        continue
      }
      if (this.differing.has(doc)) {
        log('sync with %s: %s still differs; syncing it afresh', this.peer, doc)
        this.states.delete(doc)
      }
      this.differing.add(doc)
      if (theirs[doc] == null) {
        // sent already, as it is now: still on its way (a long catch-up outlasts a manifest period)
        if (this.blobsSent.get(doc) === heads) continue
        const blob = await this.ledger.blob(doc)
        if (blob != null) {
          this.send(FrameType.blob, doc, blob)
          this.blobsSent.set(doc, heads)
        }
        // then a sync message, if the document is in memory (sealed ones are not): it sets up the
        // sync state of a document still being written, without which every later change to it
        // took several round trips
      } else {
        await this.ledger.unseal(doc)
      }
      this.offer(doc)
    }
  }

  private async receiveBlob (doc: string, blob: Uint8Array): Promise<void> {
    try {
      const incoming = A.load<FactDoc>(blob)
      try {
        const heads = headsDigestOf(incoming)
        this.peerHolds.set(doc, heads)
        // another peer may have sent it too: one this replica holds as it is (sealed, say) is not loaded again
        if (this.ledger.holds(doc, heads)) return
        await this.ledger.applyRemote(doc, current => A.merge(current, incoming))
      } finally {
        A.free(incoming)
      }
      await this.ledger.receivedWhole(doc)
    } catch (err) {
      if (err instanceof StorageError) throw err
      log('bad blob of %s from %s: %s', doc, this.peer, (err as Error).message)
    }
  }

  /**
   * A sync message we cannot use starts that document's sync over. One we could not store ends
   * the session (the caller closes it): the peer's sync state counts those changes as sent and
   * would never send them again on this stream, and the next stream starts from the manifests.
   */
  private async receiveSync (doc: string, message: Uint8Array): Promise<void> {
    try {
      await this.ledger.applyRemote(doc, current => {
        const [next, state] = A.receiveSyncMessage(current, this.state(doc), message)
        this.states.set(doc, state)
        return next
      })
    } catch (err) {
      if (err instanceof StorageError) throw err
      log('bad sync message for %s from %s: %s', doc, this.peer, (err as Error).message)
      this.states.delete(doc)
    }
    this.offer(doc)
  }
}
