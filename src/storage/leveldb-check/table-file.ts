/** LevelDB's table format (doc/table_format.md): checksummed blocks, some snappy-compressed. */
import { maskedCrc32c } from './crc32c.js'
import { Cursor, uint32 } from './cursor.js'
import { snappyDecompress } from './snappy.js'

const FOOTER_SIZE = 48
const TRAILER_SIZE = 5 // compression type (1), masked crc (4)
const TABLE_MAGIC = [0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb] // 0xdb4775248b80fb57, little-endian
const NO_COMPRESSION = 0
const SNAPPY = 1

interface BlockHandle { offset: number, size: number }

function readHandle (c: Cursor): BlockHandle {
  return { offset: c.varint(), size: c.varint() }
}

/**
 * Checks the footer, the index block and every data block it points to, and the metaindex block
 * with the filter block it points to (a damaged filter would hide keys from reads).
 */
export function checkTable (buf: Uint8Array): string | undefined {
  if (buf.length < FOOTER_SIZE) return 'too short for a table'
  if (TABLE_MAGIC.some((b, i) => buf[buf.length - 8 + i] !== b)) return 'bad table magic number'
  const footer = new Cursor(buf, buf.length - FOOTER_SIZE)
  const metaindex = readHandle(footer)
  const index = readHandle(footer)
  return checkIndexBlock(buf, metaindex, 'metaindex', 'meta') ?? checkIndexBlock(buf, index, 'index', 'data')
}

/** Checks a block whose entries are handles of other blocks (of `childKind`), and those blocks. */
function checkIndexBlock (buf: Uint8Array, handle: BlockHandle, kind: string, childKind: string): string | undefined {
  const problem = blockProblem(buf, handle, kind)
  if (problem !== undefined) return problem
  for (const child of blockValues(blockContents(buf, handle))) {
    const childProblem = blockProblem(buf, readHandle(new Cursor(child)), childKind)
    if (childProblem !== undefined) return childProblem
  }
  return undefined
}

/** Why the block is out of the file's range or fails its checksum, or undefined. */
function blockProblem (buf: Uint8Array, { offset, size }: BlockHandle, kind: string): string | undefined {
  if (offset + size + TRAILER_SIZE > buf.length - FOOTER_SIZE) return `${kind} block at offset ${offset} runs past the end`
  // the checksum covers the contents and the compression type after them
  const checksummed = buf.subarray(offset, offset + size + 1)
  if (uint32(buf, offset + size + 1) !== maskedCrc32c(checksummed)) return `bad ${kind} block checksum at offset ${offset}`
  return undefined
}

function blockContents (buf: Uint8Array, { offset, size }: BlockHandle): Uint8Array {
  const contents = buf.subarray(offset, offset + size)
  const compression = buf[offset + size]
  if (compression === NO_COMPRESSION) return contents
  if (compression === SNAPPY) return snappyDecompress(contents)
  throw new Error(`unknown compression type ${compression} of the block at offset ${offset}`)
}

/** The values of a block's entries: key-prefix-compressed entries, then the restart array. */
function blockValues (block: Uint8Array): Uint8Array[] {
  if (block.length < 4) throw new Error('block too short')
  const restarts = uint32(block, block.length - 4)
  const entriesEnd = block.length - 4 - 4 * restarts
  if (entriesEnd < 0) throw new Error(`bad restart count ${restarts}`)
  const c = new Cursor(block, 0, entriesEnd)
  const values: Uint8Array[] = []
  while (!c.done) {
    c.varint() // key bytes shared with the previous key
    const unshared = c.varint()
    const valueLength = c.varint()
    c.bytes(unshared)
    values.push(c.bytes(valueLength))
  }
  return values
}
