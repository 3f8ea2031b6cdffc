/**
 * `/meshq/join/1`: a new node presents an invite to the member that issued it, which admits it
 * into the member list (docs/protocol.md, docs/security.md).
 */
import createDebug from 'debug'
import type { Connection, Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import { InviteRefusedError, JoinFailedError, asError } from '../errors.js'
import type { Ledger } from '../crdt/ledger.js'
import { META_DOC } from '../crdt/facts.js'
import { validAddrs } from './addrs.js'
import { JOIN_GRACE_MS } from './gate.js'
import type { MembershipGate } from './gate.js'
import type { JoinToken, Membership } from './membership.js'
import type { MeshqLibp2p } from './p2p.js'
import type { SyncService } from './sync.js'

const log = createDebug('meshq:mesh')

export const JOIN_PROTOCOL = '/meshq/join/1'
const MAX_JOIN_MESSAGE = 16 * 1024

interface JoinReply { ok: boolean, error?: string }

export interface JoinInit {
  self: string
  host: MeshqLibp2p
  ledger: Ledger
  membership: Membership
  gate: MembershipGate
  sync: SyncService
  /** This node's addresses, which the joiner tells the member that admits it. */
  addresses: () => string[]
}

export class JoinProtocol {
  constructor (private readonly init: JoinInit) {}

  async start (): Promise<void> {
    await this.init.host.handle(JOIN_PROTOCOL, (stream, connection) => { void this.answer(stream, connection) })
  }

  /**
   * Presents an invite to the member that issued it and waits until the member list has arrived.
   * Throws InviteRefusedError (the inviter said no) or JoinFailedError (nobody reachable).
   */
  async join (token: JoinToken, signal: AbortSignal): Promise<void> {
    const failures: string[] = []
    for (const addr of token.addrs) {
      let stream: Stream
      try {
        stream = await this.init.host.dialProtocol(multiaddr(addr), JOIN_PROTOCOL, { signal })
      } catch (err) {
        failures.push(`${addr}: ${(err as Error).message}`)
        continue
      }
      const inviter = addr.split('/p2p/')[1]
      this.init.gate.bootstrap = inviter
      let reply: JoinReply
      try {
        reply = await this.ask(stream, token, signal)
      } catch (err) {
        failures.push(`${addr}: no answer to the join request: ${asError(err).message}`)
        continue
      } finally {
        await stream.close().catch(() => {})
      }
      if (!reply.ok) throw new InviteRefusedError(`the cluster refused this node: ${reply.error ?? 'no reason given'}`)
      if (inviter != null) await this.init.sync.connect(inviter)
      await this.waitForMembers(signal)
      return
    }
    throw new JoinFailedError(`cannot reach the inviting node (wrong cluster key, or it is down): ${failures.join('; ')}`)
  }

  private async ask (stream: Stream, token: JoinToken, signal: AbortSignal): Promise<JoinReply> {
    const lp = lpStream(stream, { maxDataLength: MAX_JOIN_MESSAGE })
    const request = { invite: token.invite, secret: token.secret, addrs: this.init.addresses() }
    await lp.write(new TextEncoder().encode(JSON.stringify(request)), { signal })
    const reply = JSON.parse(new TextDecoder().decode((await lp.read({ signal })).subarray())) as JoinReply
    if (typeof reply?.ok !== 'boolean') throw new Error('malformed reply')
    return reply
  }

  private async waitForMembers (signal: AbortSignal): Promise<void> {
    const { ledger, membership, self } = this.init
    while (ledger.doc(META_DOC) == null || !membership.isMember(self)) {
      signal.throwIfAborted()
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }

  private async answer (stream: Stream, connection: Connection): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_JOIN_MESSAGE })
    const reply = async (body: JoinReply): Promise<void> => { await lp.write(new TextEncoder().encode(JSON.stringify(body))) }
    const peer = connection.remotePeer.toString()
    try {
      const request = JSON.parse(new TextDecoder().decode((await lp.read({ signal: AbortSignal.timeout(JOIN_GRACE_MS) })).subarray()))
      const { invite, secret, addrs } = request ?? {}
      if (typeof invite !== 'string' || typeof secret !== 'string' || !Array.isArray(addrs)) {
        throw new InviteRefusedError('malformed join request')
      }
      await this.init.gate.identified(peer, JOIN_GRACE_MS)
      if (this.init.gate.isIncompatible(peer)) throw new InviteRefusedError('this node speaks another meshq protocol major version')
      await this.init.membership.admit(peer, invite, secret, validAddrs(addrs))
      await reply({ ok: true })
      log('admitted %s', peer)
    } catch (err) {
      log('refused join from %s: %s', peer, (err as Error).message)
      await reply({ ok: false, error: err instanceof InviteRefusedError ? err.message : 'join failed' }).catch(() => {})
    } finally {
      await stream.close().catch(() => {})
    }
  }
}
