/** The MANIFEST: which table files are live. */
import { join } from 'node:path'
import { Cursor } from './cursor.js'
import { readIfExists } from './files.js'
import { logicalRecords, scanLog } from './log-file.js'

const CURRENT_CONTENT = /^(MANIFEST-\d+)\n$/

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
export async function liveTables (dir: string): Promise<Set<number> | string> {
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
