import { describe, expect, it } from 'vitest'
import { fastMessageId } from '../src/net/gossip.js'

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
