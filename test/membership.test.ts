import { describe, expect, it } from 'vitest'
import { FakeClock } from '../src/clock.js'
import { META_DOC, MetaMap } from '../src/crdt/facts.js'
import type { FactChange } from '../src/crdt/facts.js'
import type { Ledger } from '../src/crdt/ledger.js'
import { Membership } from '../src/node/membership.js'
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
})
