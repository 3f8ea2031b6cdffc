import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { FakeClock } from '../src/clock.js'
import { META_DOC, MetaMap } from '../src/crdt/facts.js'
import type { FactChange } from '../src/crdt/facts.js'
import type { Ledger } from '../src/crdt/ledger.js'
import { Membership } from '../src/net/membership.js'
import { MAX_INVITE_TTL_MS } from '../src/types.js'

/** A membership whose ledger only records what it is asked to write, and hands it back as the ledger would. */
function membership (): { members: Membership, written: FactChange[] } {
  const written: FactChange[] = []
  const ledger = {
    put: async (facts: FactChange[]) => {
      written.push(...facts)
      members.ingest(facts)
    }
  } as unknown as Ledger
  const members = new Membership({ self: 'peerA', ledger, clock: new FakeClock() })
  return { members, written }
}

describe('invites', () => {
  it('are refused before anything is written when their time to live is not a finite span of at most 365 days', async () => {
    const { members, written } = membership()
    for (const ttlMs of [1e300, Infinity, NaN, 0, -1, MAX_INVITE_TTL_MS + 1]) {
      await expect(members.createInvite({ ttlMs, uses: 1 })).rejects.toMatchObject({ name: 'UsageError', message: expect.stringContaining('time to live') })
    }
    await expect(members.createInvite({ ttlMs: 1000, uses: 1e300 })).rejects.toMatchObject({ name: 'UsageError' })
    expect(written).toEqual([])
    await members.createInvite({ ttlMs: MAX_INVITE_TTL_MS, uses: 1 })
    expect(members.listInvites()).toHaveLength(1)
  })

  it('from a peer with a time no date can hold are left out of the list, which the others still make', async () => {
    const { members } = membership()
    await members.createInvite({ ttlMs: 60_000, uses: 1 })
    const [good] = members.listInvites()
    // what a node wrote before the cap: 'invite --list' then failed on every replica
    const bad = { ...good, id: 'bad', expiresAt: 1e300 }
    members.ingest([{ doc: META_DOC, map: MetaMap.invites, key: 'bad', value: bad }])
    expect(members.listInvites().map(i => i.id)).toEqual([good.id])
  })

  it('of an evicted member are revoked with its eviction, and admit no one', async () => {
    const { members, written } = membership()
    await members.found([])
    const member = (peer: string): FactChange => ({ doc: META_DOC, map: MetaMap.members, key: peer, value: { peer, addrs: [], joinedAt: 0, by: 'peerA' } })
    members.ingest([member('peerB')])
    // an invite peerB issued, as it arrives from peerB
    const secret = 'the-secret'
    const hash = createHash('sha256').update(secret).digest('hex')
    const invite = { id: 'inv1', hash, expiresAt: 60_000, uses: 100, by: 'peerB', createdAt: 0 }
    members.ingest([{ doc: META_DOC, map: MetaMap.invites, key: 'inv1', value: invite }])
    await members.evict('peerB')
    expect(written.map(f => f.key)).toContain('revoke|inv1|peerA')
    expect(members.listInvites()).toMatchObject([{ id: 'inv1', revoked: true }])
    await expect(members.admit('peerC', 'inv1', secret, [])).rejects.toMatchObject({ name: 'InviteRefusedError', message: 'the invite was revoked' })
  })

  it('whose issuer is no longer a member admit no one, even before any revocation arrives', async () => {
    const { members } = membership()
    await members.found([])
    const secret = 'the-secret'
    const hash = createHash('sha256').update(secret).digest('hex')
    members.ingest([
      { doc: META_DOC, map: MetaMap.members, key: 'peerB', value: { peer: 'peerB', addrs: [], joinedAt: 0, by: 'peerA' } },
      { doc: META_DOC, map: MetaMap.invites, key: 'inv2', value: { id: 'inv2', hash, expiresAt: 60_000, uses: 1, by: 'peerB', createdAt: 0 } },
      // evicted by another node, whose revocations have not arrived here
      { doc: META_DOC, map: MetaMap.evictions, key: 'peerB|peerD', value: { by: 'peerD', at: 0 } }
    ])
    expect(members.listInvites()).toMatchObject([{ id: 'inv2', revoked: true }])
    await expect(members.admit('peerC', 'inv2', secret, [])).rejects.toMatchObject({ name: 'InviteRefusedError', message: expect.stringContaining('no longer a member') })
    expect(members.isMember('peerC')).toBe(false)
  })
})
