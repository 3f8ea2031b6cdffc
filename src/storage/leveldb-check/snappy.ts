/**
 * Snappy decompression, raw format (what LevelDB's table blocks use), written here rather than taken
 * from a package, because none made the check faster or as strict. The check decompresses only index
 * blocks (a few KiB per table), so what a package costs to load counts more than its speed. Measured
 * on the 20.3 MB store of bench/store-check.js (loading the modules, then one check; CPU medians of 15
 * new processes): this decoder 185 ms; `snappy` 7.4.3 (native, prebuilt) 206 ms, as loading its
 * binary costs about 17 ms more; `snappyjs` 0.7.0 (pure JS) 191 ms, but it accepts damaged data that
 * this decoder refuses: output shorter than the length the block declares, and copies past its end.
 */
import { Cursor } from './cursor.js'

/** No snappy element puts out more than 64 bytes for 3 in, so a longer claimed length is damage. */
const SNAPPY_MAX_EXPANSION = 22

/** The decompressed contents of a raw snappy block; throws on damage. */
export function snappyDecompress (input: Uint8Array): Uint8Array {
  const c = new Cursor(input)
  const length = c.varint()
  if (length > input.length * SNAPPY_MAX_EXPANSION) throw new Error(`snappy: implausible length ${length}`)
  const out = new Uint8Array(length)
  let pos = 0
  while (!c.done) {
    const tag = c.byte()
    pos = (tag & 3) === 0 ? snappyLiteral(c, tag, out, pos) : snappyCopy(c, tag, out, pos)
  }
  if (pos !== length) throw new Error(`snappy: ${pos} bytes instead of ${length}`)
  return out
}

function snappyLiteral (c: Cursor, tag: number, out: Uint8Array, pos: number): number {
  // lengths of 61 bytes and more follow the tag in 1 to 4 bytes
  const lengthCode = tag >> 2
  const length = (lengthCode < 60 ? lengthCode : c.fixed(lengthCode - 59)) + 1
  if (pos + length > out.length) throw new Error('snappy: literal past the end')
  out.set(c.bytes(length), pos)
  return pos + length
}

function snappyCopy (c: Cursor, tag: number, out: Uint8Array, pos: number): number {
  const kind = tag & 3
  const length = kind === 1 ? 4 + ((tag >> 2) & 7) : 1 + (tag >> 2)
  const offset = kind === 1 ? ((tag >> 5) << 8) | c.byte() : c.fixed(kind === 2 ? 2 : 4)
  if (offset === 0 || offset > pos || pos + length > out.length) throw new Error('snappy: bad copy')
  // byte by byte: the source may overlap what is being written
  for (let i = pos; i < pos + length; i++) out[i] = out[i - offset]
  return pos + length
}
