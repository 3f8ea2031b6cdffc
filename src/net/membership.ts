import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import createDebug from 'debug'
import { InviteRefusedError, PeerNotFoundError, UsageError } from '../errors.js'
import type { Clock } from '../clock.js'
import { addTo } from '../collections.js'
import type { Ledger } from '../crdt/ledger.js'
import { META_DOC, MetaMap } from '../crdt/facts.js'
import type { FactChange } from '../crdt/facts.js'
import { MAX_INVITE_TTL_MS } from '../types.js'
import { validAddrs } from './addrs.js'

const log = createDebug('meshq:membership')

export interface MemberFact {
  peer: string
  addrs: string[]
  joinedAt: number
  by: string
  invite?: string
}

/** What a node says of itself, under its own key in `nodes`. */
export interface NodeFact {
  peer: string
  addrs: string[]
  slots: number
  tags: string[]
  at: number
  /**
   * The node drained and stopped: it runs nothing and votes in no claim until it starts again,
   * so claims need a majority of the members without it.
   */
  left?: boolean
}

export interface InviteFact {
  id: string
  /** sha256 of the secret, hex: the secret itself is only in the token. */
  hash: string
  expiresAt: number
  uses: number
  by: string
  createdAt: number
}

export interface InviteView extends InviteFact {
  used: number
  revoked: boolean
  expired: boolean
}

/** The content of a join token. */
export interface JoinToken {
  cluster: string
  /** base64 of the cluster's pre-shared key. */
  psk: string
  invite: string
  secret: string
  addrs: string[]
}

const TOKEN_PREFIX = 'mq1.'
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

/** The latest time a Date can hold, in ms: invite times are shown as dates. */
const MAX_DATE_MS = 8.64e15
const SHA256_HEX = /^[0-9a-f]{64}$/
const isTime = (v: unknown): boolean => Number.isSafeInteger(v) && Math.abs(v as number) <= MAX_DATE_MS

/** Whether an invite fact (from this node, an older one or a peer) can be listed and checked; one that cannot is ignored. */
function validInvite (v: Partial<InviteFact> | null): boolean {
  return typeof v?.id === 'string' && typeof v.hash === 'string' && SHA256_HEX.test(v.hash) && isTime(v.expiresAt) &&
    isTime(v.createdAt) && Number.isSafeInteger(v.uses) && typeof v.by === 'string'
}

export function encodeToken (token: JoinToken): string {
  const compact = { c: token.cluster, k: token.psk, i: token.invite, s: token.secret, a: token.addrs }
  return TOKEN_PREFIX + Buffer.from(JSON.stringify(compact)).toString('base64url')
}

export function decodeToken (text: string): JoinToken {
  const bad = (): never => { throw new UsageError('this join token is malformed (was it copied whole?)') }
  if (!text.startsWith(TOKEN_PREFIX)) bad()
  let raw: Record<string, unknown> = {}
  try {
    raw = JSON.parse(Buffer.from(text.slice(TOKEN_PREFIX.length), 'base64url').toString('utf8'))
  } catch {
    bad()
  }
  const { c, k, i, s, a } = raw
  if (typeof c !== 'string' || typeof k !== 'string' || typeof i !== 'string' || typeof s !== 'string' ||
    !Array.isArray(a) || !a.every(x => typeof x === 'string') || Buffer.from(k, 'base64').length !== 32) bad()
  return { cluster: c as string, psk: k as string, invite: i as string, secret: s as string, addrs: a as string[] }
}

/**
 * Who belongs to the cluster, from the facts of the meta document: members, their own node
 * records, invites (issued, used, revoked) and evictions. Answers "is this peer a member" for
 * every protocol, and admits new members against invites.
 */
export class Membership {
  private readonly members = new Map<string, MemberFact>()
  private readonly nodes = new Map<string, NodeFact>()
  private readonly evicted = new Set<string>()
  private readonly invites = new Map<string, InviteFact>()
  private readonly uses = new Map<string, Set<string>>()
  private readonly revoked = new Set<string>()
  private readonly listeners = new Set<() => void>()
  /** Wall-clock ms of this start: drain requests older than it were for an earlier run. */
  private readonly startedAt: number
  private drainListener?: () => void
  private admitting: Promise<void> = Promise.resolve()

  constructor (private readonly init: { self: string, ledger: Ledger, clock: Clock }) {
    this.startedAt = init.clock.now()
  }

  /** Calls `listener` when another member asks this node to drain (`meshq drain --peer`). */
  onDrainRequest (listener: () => void): void {
    this.drainListener = listener
  }

  /** Asks another node to drain: a fact it acts on when it sees it. */
  async requestDrain (peer: string): Promise<void> {
    if (!this.isMember(peer)) throw new PeerNotFoundError(`no member ${peer}`)
    const at = this.init.clock.now()
    await this.put(MetaMap.drains, `${peer}|${at}|${this.init.self}`, { peer, by: this.init.self, at })
  }

  ingest (changes: FactChange[]): void {
    let changed = false
    for (const { map, key, value } of changes) {
      if (map === MetaMap.members) this.members.set(key, value as MemberFact)
      else if (map === MetaMap.nodes) this.nodes.set(key, value as NodeFact)
      else if (map === MetaMap.evictions) this.evicted.add(key.slice(0, key.indexOf('|')))
      else if (map === MetaMap.invites) this.ingestInvite(key, value as InviteFact)
      else if (map === MetaMap.drains) this.ingestDrain(value as { peer?: unknown, at?: unknown })
      else continue
      changed = true
    }
    if (changed) for (const listener of this.listeners) listener()
  }

  onChange (listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  isMember (peer: string): boolean {
    return this.members.has(peer) && !this.evicted.has(peer)
  }

  isEvicted (peer: string): boolean {
    return this.evicted.has(peer)
  }

  memberIds (): string[] {
    return [...this.members.keys()].filter(p => !this.evicted.has(p))
  }

  /** The members a claim's quorum counts: those not evicted and not gone after a drain (see `leave`). */
  activeIds (): string[] {
    return this.memberIds().filter(p => this.nodes.get(p)?.left !== true)
  }

  /**
   * Where a member can be reached: its own latest record, else what it gave when it joined. Only
   * addresses that parse: the facts came from peers.
   */
  addresses (peer: string): string[] {
    return validAddrs(this.nodes.get(peer)?.addrs ?? this.members.get(peer)?.addrs)
  }

  node (peer: string): NodeFact | undefined {
    return this.nodes.get(peer)
  }

  /** Records the first member: the node that founds a cluster. */
  async found (addrs: string[]): Promise<void> {
    await this.putMember({ peer: this.init.self, addrs, joinedAt: this.init.clock.now(), by: this.init.self })
  }

  /** Records this node's own addresses, slots and tags, and that it is active, when any of it changed. */
  async announce (fact: Omit<NodeFact, 'peer' | 'at' | 'left'>): Promise<void> {
    const current = this.nodes.get(this.init.self)
    const same = current != null && current.left !== true &&
      JSON.stringify([current.addrs, current.slots, current.tags]) === JSON.stringify([fact.addrs, fact.slots, fact.tags])
    if (same) return
    await this.put(MetaMap.nodes, this.init.self, { ...fact, peer: this.init.self, at: this.init.clock.now() })
  }

  /**
   * Records that this node drained and is stopping: the others stop counting it in claim quorums at
   * once, so losing it costs a two-node cluster nothing. Its next start makes it active again.
   */
  async leave (): Promise<void> {
    const current = this.nodes.get(this.init.self)
    if (current == null) return
    await this.put(MetaMap.nodes, this.init.self, { ...current, left: true, at: this.init.clock.now() })
  }

  async createInvite (options: { ttlMs: number, uses: number }): Promise<{ id: string, secret: string, expiresAt: number }> {
    if (!(options.ttlMs > 0 && options.ttlMs <= MAX_INVITE_TTL_MS)) {
      throw new UsageError(`an invite's time to live must be more than 0 and at most 365 days, not ${options.ttlMs} ms`)
    }
    if (!Number.isSafeInteger(options.uses) || options.uses <= 0) {
      throw new UsageError(`an invite's uses must be a positive integer, not ${options.uses}`)
    }
    const id = randomBytes(6).toString('hex')
    const secret = randomBytes(24).toString('base64url')
    const now = this.init.clock.now()
    const fact: InviteFact = {
      id, hash: sha256(secret), expiresAt: now + options.ttlMs, uses: options.uses, by: this.init.self, createdAt: now
    }
    await this.put(MetaMap.invites, id, fact)
    return { id, secret, expiresAt: fact.expiresAt }
  }

  listInvites (): InviteView[] {
    const now = this.init.clock.now()
    return [...this.invites.values()].map(i => ({
      ...i, used: this.uses.get(i.id)?.size ?? 0, revoked: this.isRevoked(i), expired: i.expiresAt <= now
    }))
  }

  /**
   * Revoked by a fact, or issued by a node that is no longer a member: an evicted member's invites
   * die with its membership, on every node, even one that has not received their revocation facts.
   */
  private isRevoked (invite: InviteFact): boolean {
    return this.revoked.has(invite.id) || !this.isMember(invite.by)
  }

  async revoke (id: string): Promise<void> {
    if (!this.invites.has(id)) throw new UsageError(`no invite ${id}`)
    await this.put(MetaMap.invites, `revoke|${id}|${this.init.self}`, { by: this.init.self, at: this.init.clock.now() })
  }

  /** Evicts `peer` and, in the same write, revokes every invite it issued. */
  async evict (peer: string): Promise<void> {
    if (!this.members.has(peer)) throw new UsageError(`no member ${peer}`)
    if (peer === this.init.self) throw new UsageError('a node cannot evict itself')
    const at = this.init.clock.now()
    const value = { by: this.init.self, at }
    const revocations: FactChange[] = [...this.invites.values()].filter(i => i.by === peer && !this.revoked.has(i.id))
      .map(i => ({ doc: META_DOC, map: MetaMap.invites, key: `revoke|${i.id}|${this.init.self}`, value }))
    const eviction: FactChange = { doc: META_DOC, map: MetaMap.evictions, key: `${peer}|${this.init.self}`, value }
    await this.init.ledger.put([eviction, ...revocations], { sync: true })
  }

  /** Admits `peer` with an invite's secret, or throws InviteRefusedError saying why. */
  async admit (peer: string, invite: string, secret: string, addrs: string[]): Promise<void> {
    // one at a time: the uses left are checked and spent without another admission in between
    const turn = this.admitting.then(async () => { await this.admitNow(peer, invite, secret, addrs) })
    this.admitting = turn.catch(() => {})
    await turn
  }

  private async admitNow (peer: string, invite: string, secret: string, addrs: string[]): Promise<void> {
    if (this.isMember(peer)) return
    if (this.evicted.has(peer)) throw new InviteRefusedError('this node was evicted from the cluster')
    const fact = this.invites.get(invite)
    const given = Buffer.from(sha256(secret), 'hex')
    if (fact == null || !timingSafeEqual(given, Buffer.from(fact.hash, 'hex'))) {
      throw new InviteRefusedError('the invite is not valid (unknown or tampered)')
    }
    if (this.revoked.has(invite)) throw new InviteRefusedError('the invite was revoked')
    if (!this.isMember(fact.by)) throw new InviteRefusedError('the invite was issued by a node that is no longer a member')
    if (fact.expiresAt <= this.init.clock.now()) {
      throw new InviteRefusedError(`the invite expired at ${new Date(fact.expiresAt).toISOString()}`)
    }
    if ((this.uses.get(invite)?.size ?? 0) >= fact.uses) throw new InviteRefusedError('the invite has been used up')
    const now = this.init.clock.now()
    await this.init.ledger.put([
      { doc: META_DOC, map: MetaMap.invites, key: `use|${invite}|${peer}`, value: { at: now, by: this.init.self } },
      { doc: META_DOC, map: MetaMap.members, key: peer, value: { peer, addrs, joinedAt: now, by: this.init.self, invite } }
    ], { sync: true })
  }

  private ingestDrain (request: { peer?: unknown, at?: unknown }): void {
    if (request.peer === this.init.self && typeof request.at === 'number' && request.at >= this.startedAt) this.drainListener?.()
  }

  private ingestInvite (key: string, value: InviteFact): void {
    const [kind, id, peer] = key.split('|')
    if (kind === 'use') addTo(this.uses, id, peer)
    else if (kind === 'revoke') this.revoked.add(id)
    else if (validInvite(value)) this.invites.set(key, value)
    else log('ignoring malformed invite %s', key)
  }

  private async putMember (fact: MemberFact): Promise<void> {
    await this.put(MetaMap.members, fact.peer, fact)
  }

  private async put (map: typeof MetaMap[keyof typeof MetaMap], key: string, value: unknown): Promise<void> {
    await this.init.ledger.put([{ doc: META_DOC, map, key, value }], { sync: true })
  }
}
