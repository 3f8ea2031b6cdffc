import { describe, expect, it } from 'vitest'
import { ReplayGuard } from '../src/net/replay.js'
import { StatusStamper, parseStatus, stampOf } from '../src/net/status-gossip.js'

const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))
const load = { peer: 'p', slots: 2, running: 0, draining: false, tags: [] }

describe('the replay guard of gossip', () => {
  it('takes a sequence in order and drops an old or repeated seq of the same boot', () => {
    const guard = new ReplayGuard()
    expect(guard.fresh('p', { boot: 'a', seq: 1, at: 10 })).toBe(true)
    expect(guard.fresh('p', { boot: 'a', seq: 3, at: 30 })).toBe(true)
    expect(guard.fresh('p', { boot: 'a', seq: 3, at: 30 })).toBe(false)
    expect(guard.fresh('p', { boot: 'a', seq: 2, at: 20 })).toBe(false)
    expect(guard.fresh('q', { boot: 'a', seq: 1, at: 10 })).toBe(true) // per peer
  })

  it('drops the messages of an earlier boot once a later one was heard, by the author\'s own clock', () => {
    const guard = new ReplayGuard()
    expect(guard.fresh('p', { boot: 'old', seq: 900, at: 1000 })).toBe(true)
    expect(guard.fresh('p', { boot: 'new', seq: 1, at: 5000 })).toBe(true) // a restart
    expect(guard.fresh('p', { boot: 'old', seq: 901, at: 1100 })).toBe(false) // the replay of a dead boot
    expect(guard.fresh('p', { boot: 'new', seq: 2, at: 6000 })).toBe(true)
  })

  it('takes a new boot of claim batches, which carry no time, and never an unstamped message after a stamped one', () => {
    const guard = new ReplayGuard()
    expect(guard.fresh('p', undefined)).toBe(true) // a node of protocol 2.0
    expect(guard.fresh('p', undefined)).toBe(true)
    expect(guard.fresh('p', { boot: 'a', seq: 5 })).toBe(true)
    expect(guard.fresh('p', { boot: 'b', seq: 1 })).toBe(true)
    expect(guard.fresh('p', undefined)).toBe(false)
  })
})

describe('status messages', () => {
  it('carry a boot, a rising seq and the time', () => {
    let now = 100
    const stamper = new StatusStamper('b00t', () => now)
    expect(stamper.next()).toEqual({ boot: 'b00t', seq: 1, at: 100 })
    now = 200
    expect(stamper.next()).toEqual({ boot: 'b00t', seq: 2, at: 200 })
  })

  it('parse with or without a stamp (protocol 2.0), and not with half of one or a bad field', () => {
    expect(stampOf(parseStatus(encode({ ...load, boot: 'b', seq: 1, at: 5, memFree: 1024 }))!)).toEqual({ boot: 'b', seq: 1, at: 5 })
    expect(parseStatus(encode({ ...load, memFree: 1024 }))?.memFree).toBe(1024)
    expect(stampOf(parseStatus(encode(load))!)).toBeUndefined()
    for (const bad of [{ ...load, boot: 'b' }, { ...load, boot: 'b', seq: -1, at: 5 }, { ...load, boot: 7, seq: 1, at: 5 }, { ...load, memFree: 'lots' }, { ...load, memFree: -1 }]) {
      expect(parseStatus(encode(bad))).toBeUndefined()
    }
    expect(parseStatus(new Uint8Array(5000))).toBeUndefined()
    expect(parseStatus(encode('{'))).toBeUndefined()
  })
})
