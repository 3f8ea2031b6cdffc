import { describe, expect, it } from 'vitest'
import { FakeClock } from '../src/clock.js'
import { fastMessageId } from '../src/net/gossip.js'
import { STATUS_INTERVAL_MS, StatusBeacon } from '../src/net/status-gossip.js'
import type { NodeLoad, NodeStatusGossip } from '../src/net/status-gossip.js'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const message = { from: bytes('author'), seqno: bytes('00000001'), topic: 'meshq/c/status/1', data: bytes('{"peer":"author"}'), signature: bytes('sig'), key: undefined }

describe('the fast message id (dropping copies of a message before its signature is checked again)', () => {
  it('is the same for a copy of a message, and differs when any field does, the signature included', () => {
    expect(fastMessageId({ ...message })).toBe(fastMessageId(message))
    const changed = [
      { from: bytes('someone else') },
      { seqno: bytes('00000002') },
      { topic: 'meshq/c/claims/2' },
      { data: bytes('{"peer":"author "}') },
      { signature: bytes('forged') },
      { signature: undefined },
      { key: bytes('k') }
    ]
    const ids = new Set([fastMessageId(message), ...changed.map(c => fastMessageId({ ...message, ...c }))])
    expect(ids.size).toBe(changed.length + 1)
  })

  it('keeps fields apart: bytes moved from one field to the next make another id', () => {
    const a = fastMessageId({ ...message, data: bytes('{"peer":"author"}x'), signature: bytes('ig') })
    const b = fastMessageId({ ...message, data: bytes('{"peer":"author"}'), signature: bytes('xig') })
    expect(a).not.toBe(b)
  })
})

/** A beacon on a clock the test moves, looking once a second; `sent` lists the load of each status published, with its time. */
function beacon (members: number): { look: (seconds: number) => void, sent: string[], load: NodeLoad, cluster: { members: number } } {
  const clock = new FakeClock()
  const sent: string[] = []
  const load: NodeLoad = { slots: 2, running: 0, draining: false, tags: [], memFree: 1000 }
  const cluster = { members }
  const channel = { publish: (s: NodeStatusGossip) => { sent.push(`${clock.monotonic() / 1000}s:${s.running}`) }, subscribe: () => {} }
  const b = new StatusBeacon('me', () => ({ ...load }), channel, clock, () => cluster.members)
  const look = (seconds: number): void => {
    for (let i = 0; i < seconds; i++) {
      clock.advance(STATUS_INTERVAL_MS)
      b.check()
    }
  }
  return { look, sent, load, cluster }
}

describe('the status beacon', () => {
  it('in a cluster of up to three members, publishes every second, changed or not (the two-member alone window is 1 s at least)', () => {
    const { look, sent } = beacon(3)
    look(4)
    expect(sent).toEqual(['1s:0', '2s:0', '3s:0', '4s:0'])
  })

  it('in a larger cluster, publishes a change of load or of the member count at its next look, and otherwise every third second', () => {
    const { look, sent, load, cluster } = beacon(5)
    look(7)
    expect(sent).toEqual(['1s:0', '4s:0', '7s:0'])
    load.memFree = 10 // free memory alone waits for the keep-alive
    look(1)
    expect(sent).toHaveLength(3)
    load.running = 1
    look(1)
    expect(sent.at(-1)).toBe('9s:1')
    cluster.members = 6
    look(1)
    expect(sent.at(-1)).toBe('10s:1')
    look(2)
    expect(sent).toHaveLength(5)
    cluster.members = 3 // back to every second: a member may now count two
    look(2)
    expect(sent.slice(-2)).toEqual(['13s:1', '14s:1'])
  })
})
