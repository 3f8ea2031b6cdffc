/** The little-endian unsigned 32-bit integer at `pos`. */
export function uint32 (buf: Uint8Array, pos: number): number {
  return (buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) | (buf[pos + 3] << 24)) >>> 0
}

/** Reads LevelDB's encodings from `buf[pos, end)`, throwing on a value that runs past the end. */
export class Cursor {
  readonly buf: Uint8Array
  readonly end: number
  pos: number

  constructor (buf: Uint8Array, pos = 0, end = buf.length) {
    this.buf = buf
    this.pos = pos
    this.end = end
  }

  get done (): boolean { return this.pos >= this.end }

  byte (): number {
    this.need(1)
    return this.buf[this.pos++]
  }

  bytes (n: number): Uint8Array {
    this.need(n)
    this.pos += n
    return this.buf.subarray(this.pos - n, this.pos)
  }

  private need (n: number): void {
    if (this.pos + n > this.end) throw new Error(`data runs past the end at offset ${this.pos}`)
  }

  /** A little-endian integer of `n` bytes. */
  fixed (n: number): number {
    return this.bytes(n).reduceRight((value, b) => value * 256 + b, 0)
  }

  varint (): number {
    let value = 0
    for (let shift = 0; shift < 64; shift += 7) {
      const b = this.byte()
      value += (b & 0x7f) * 2 ** shift
      if (b < 0x80) return value
    }
    throw new Error(`varint too long at offset ${this.pos}`)
  }

  /** A varint length, then that many bytes. */
  slice (): Uint8Array { return this.bytes(this.varint()) }
}
