/**
 * LevelDB's log format (doc/log_format.md), used by the write-ahead log and the MANIFEST: 32 KiB
 * blocks of checksummed physical records, which are fragments of logical records.
 */
import { maskedCrc32c } from './crc32c.js'
import { uint32 } from './cursor.js'

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
export function scanLog (buf: Uint8Array): LogScan {
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
export function checkLog (buf: Uint8Array): string | undefined {
  const { bad } = scanLog(buf)
  if (bad === undefined || !soundRecordAfter(buf, bad.at)) return undefined
  return `${bad.problem} at offset ${bad.at}`
}

/** The complete logical records of a log's sound records, joining fragments as LevelDB does. */
export function logicalRecords (records: PhysicalRecord[]): Uint8Array[] {
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
