/**
 * Verifies the checksums of a LevelDB directory before LevelDB opens it.
 *
 * classic-level opens LevelDB with paranoid_checks off, and then LevelDB drops a corrupted record of
 * its write-ahead log without a word: the facts in it are gone. This check finds such damage first so
 * that the node can refuse to start. It reads the formats described in LevelDB's doc/log_format.md
 * and doc/table_format.md.
 */
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'

const LOG_FILE = /^\d+\.log$/
const TABLE_FILE = /^\d+\.(ldb|sst)$/
const CURRENT_CONTENT = /^(MANIFEST-\d+)\n$/

/**
 * The first problem found in the LevelDB files of `dir`, as a short description, or undefined when
 * they are sound (or there are none yet). Damage that LevelDB recovers from without losing a synced
 * write, such as a log's torn tail, is not a problem.
 */
export async function findCorruption (dir: string): Promise<string | undefined> {
  const names = await listDir(dir)
  const logs = names.filter(n => LOG_FILE.test(n))
  const tables = names.filter(n => TABLE_FILE.test(n))
  for (const name of logs) {
    const problem = await checkFile(dir, name, checkLog)
    if (problem !== undefined) return problem
  }
  if (logs.length + tables.length === 0) return undefined
  const live = await liveTables(dir)
  if (typeof live === 'string') return live
  for (const name of tables.filter(n => live.has(fileNumber(n)))) {
    const problem = await checkFile(dir, name, checkTable)
    if (problem !== undefined) return problem
  }
  return undefined
}

async function listDir (dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

/** The file's contents; undefined when it is gone (a node running in `dir` may delete it meanwhile). */
async function readIfExists (path: string): Promise<Uint8Array | undefined> {
  try {
    return await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** Runs `check` on a file; a parse that throws on damaged data is a problem like any other. */
async function checkFile (dir: string, name: string, check: (buf: Uint8Array) => string | undefined): Promise<string | undefined> {
  const buf = await readIfExists(join(dir, name))
  if (buf === undefined) return undefined
  try {
    const problem = check(buf)
    return problem === undefined ? undefined : `${name}: ${problem}`
  } catch (err) {
    return `${name}: ${(err as Error).message}`
  }
}

function fileNumber (name: string): number {
  return Number.parseInt(name, 10)
}

// CRC32C (Castagnoli), slicing by 8

const CRC_TABLE = crcTable()

function crcTable (): Uint32Array {
  const table = new Uint32Array(8 * 256)
  for (let i = 0; i < 256; i++) {
    let c = i
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1
    table[i] = c
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) {
      const prev = table[(s - 1) * 256 + i]
      table[s * 256 + i] = (prev >>> 8) ^ table[prev & 0xff]
    }
  }
  return table
}

function crc32c (data: Uint8Array): number {
  const t = CRC_TABLE
  let crc = ~0
  let i = 0
  for (const end = data.length - (data.length & 7); i < end; i += 8) {
    const a = crc ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24))
    crc = t[1792 + (a & 0xff)] ^ t[1536 + ((a >>> 8) & 0xff)] ^ t[1280 + ((a >>> 16) & 0xff)] ^ t[1024 + (a >>> 24)] ^
      t[768 + data[i + 4]] ^ t[512 + data[i + 5]] ^ t[256 + data[i + 6]] ^ t[data[i + 7]]
  }
  for (; i < data.length; i++) crc = t[(crc ^ data[i]) & 0xff] ^ (crc >>> 8)
  return ~crc >>> 0
}

/** The CRC as LevelDB stores it: rotated and offset, so that a CRC of data holding CRCs stays strong. */
function maskedCrc32c (data: Uint8Array): number {
  const crc = crc32c(data)
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0
}

function uint32 (buf: Uint8Array, pos: number): number {
  return (buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) | (buf[pos + 3] << 24)) >>> 0
}

/** Reads LevelDB's encodings from `buf[pos, end)`, throwing on a value that runs past the end. */
class Cursor {
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

// Logs: the write-ahead log and the MANIFEST

const BLOCK_SIZE = 32 * 1024
const HEADER_SIZE = 7 // masked crc (4), length (2), type (1)
const FULL = 1
const FIRST = 2
const LAST = 4

interface PhysicalRecord { type: number, payload: Uint8Array }

interface LogScan {
  records: PhysicalRecord[]
  /** The first record that is not sound, where the scan stopped. */
  bad?: { at: number, problem: string }
}

function blockEnd (buf: Uint8Array, pos: number): number {
  return Math.min(pos - (pos % BLOCK_SIZE) + BLOCK_SIZE, buf.length)
}

/** Why the physical record at `pos` is not sound, or undefined when its header and checksum hold. */
function recordProblem (buf: Uint8Array, pos: number): string | undefined {
  const length = buf[pos + 4] | (buf[pos + 5] << 8)
  const type = buf[pos + 6]
  if (type < FULL || type > LAST) return `bad record type ${type}`
  if (pos + HEADER_SIZE + length > blockEnd(buf, pos)) return 'bad record length'
  // the checksum covers the type byte and the payload
  if (uint32(buf, pos) !== maskedCrc32c(buf.subarray(pos + 6, pos + HEADER_SIZE + length))) return 'bad record checksum'
  return undefined
}

/** The sound physical records of a log, up to the first that is not. */
function scanLog (buf: Uint8Array): LogScan {
  const records: PhysicalRecord[] = []
  let pos = 0
  while (pos + HEADER_SIZE <= buf.length) {
    const end = blockEnd(buf, pos)
    // Less than a header left in a block is zero padding; a zero header (type 0, length 0) is space
    // preallocated but never written. LevelDB skips the rest of the block for both, as here.
    if (end - pos < HEADER_SIZE || (buf[pos + 4] | buf[pos + 5] | buf[pos + 6]) === 0) {
      pos = end
      continue
    }
    const problem = recordProblem(buf, pos)
    if (problem !== undefined) return { records, bad: { at: pos, problem } }
    const length = buf[pos + 4] | (buf[pos + 5] << 8)
    records.push({ type: buf[pos + 6], payload: buf.subarray(pos + HEADER_SIZE, pos + HEADER_SIZE + length) })
    pos += HEADER_SIZE + length
  }
  return { records }
}

/** Whether a sound physical record starts anywhere after `pos`: records lost in the middle of the log. */
function soundRecordAfter (buf: Uint8Array, pos: number): boolean {
  // byte by byte, as the damage may have hidden where records start; most offsets fail on the type byte
  for (let p = pos + 1; p + HEADER_SIZE <= buf.length; p++) {
    if (recordProblem(buf, p) === undefined) return true
  }
  return false
}

/**
 * A bad record is a problem only when a sound one follows it. With nothing after it, it is the torn
 * tail of a crash in the middle of a write that was never acknowledged as synced, and LevelDB
 * dropping it loses nothing that was promised.
 */
function checkLog (buf: Uint8Array): string | undefined {
  const { bad } = scanLog(buf)
  if (bad === undefined || !soundRecordAfter(buf, bad.at)) return undefined
  return `${bad.problem} at offset ${bad.at}`
}

/** The complete logical records of a log's sound records, joining fragments as LevelDB does. */
function logicalRecords (records: PhysicalRecord[]): Uint8Array[] {
  const complete: Uint8Array[] = []
  let fragments: Uint8Array[] | undefined
  for (const { type, payload } of records) {
    if (type === FULL) {
      complete.push(payload)
      fragments = undefined
    } else if (type === FIRST) {
      fragments = [payload]
    } else if (fragments !== undefined) {
      fragments.push(payload)
      if (type === LAST) {
        complete.push(Buffer.concat(fragments))
        fragments = undefined
      }
    }
  }
  return complete
}

// MANIFEST: which table files are live

const EDIT_COMPARATOR = 1
const EDIT_LOG_NUMBER = 2
const EDIT_NEXT_FILE_NUMBER = 3
const EDIT_LAST_SEQUENCE = 4
const EDIT_COMPACT_POINTER = 5
const EDIT_DELETED_FILE = 6
const EDIT_NEW_FILE = 7
const EDIT_PREV_LOG_NUMBER = 9

/**
 * The numbers of the table files that the current MANIFEST lists, or a problem. Only those matter:
 * LevelDB deletes the others when it opens, such as the half-written output of a compaction that a
 * crash cut short. Damage to the MANIFEST itself LevelDB refuses on its own.
 */
async function liveTables (dir: string): Promise<Set<number> | string> {
  const current = await readIfExists(join(dir, 'CURRENT'))
  // without CURRENT, LevelDB would create an empty store over the files and delete them
  if (current === undefined) return 'CURRENT is missing'
  const manifest = CURRENT_CONTENT.exec(Buffer.from(current).toString('latin1'))?.[1]
  if (manifest === undefined) return 'CURRENT does not name a MANIFEST'
  const buf = await readIfExists(join(dir, manifest))
  if (buf === undefined) return `CURRENT names ${manifest}, which is missing`
  const files = new Map<string, number>()
  try {
    for (const edit of logicalRecords(scanLog(buf).records)) applyEdit(edit, files)
  } catch (err) {
    return `${manifest}: ${(err as Error).message}`
  }
  return new Set(files.values())
}

/** Applies a VersionEdit to `files`, keyed by level and file number. */
function applyEdit (edit: Uint8Array, files: Map<string, number>): void {
  const c = new Cursor(edit)
  while (!c.done) {
    const tag = c.varint()
    switch (tag) {
      case EDIT_COMPARATOR: c.slice(); break
      case EDIT_LOG_NUMBER: case EDIT_NEXT_FILE_NUMBER: case EDIT_LAST_SEQUENCE: case EDIT_PREV_LOG_NUMBER: c.varint(); break
      case EDIT_COMPACT_POINTER: c.varint(); c.slice(); break
      case EDIT_DELETED_FILE: {
        const level = c.varint()
        files.delete(`${level}/${c.varint()}`)
        break
      }
      case EDIT_NEW_FILE: {
        const level = c.varint()
        const number = c.varint()
        files.set(`${level}/${number}`, number)
        c.varint() // file size
        c.slice() // smallest key
        c.slice() // largest key
        break
      }
      default: throw new Error(`unknown VersionEdit tag ${tag}`)
    }
  }
}

// Tables

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
function checkTable (buf: Uint8Array): string | undefined {
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
  if (uint32(buf, offset + size + 1) !== maskedCrc32c(buf.subarray(offset, offset + size + 1))) return `bad ${kind} block checksum at offset ${offset}`
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

// Snappy, raw format

/** No snappy element puts out more than 64 bytes for 3 in, so a longer claimed length is damage. */
const SNAPPY_MAX_EXPANSION = 22

function snappyDecompress (input: Uint8Array): Uint8Array {
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
