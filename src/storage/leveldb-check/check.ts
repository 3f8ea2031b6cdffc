/**
 * Verifies the checksums of a LevelDB directory before LevelDB opens it.
 *
 * classic-level opens LevelDB with paranoid_checks off, and then LevelDB drops a corrupted record of
 * its write-ahead log without a word: the facts in it are gone. This check finds such damage first so
 * that the node can refuse to start. The readers of LevelDB's files are beside it: log-file.ts (the
 * write-ahead log and the MANIFEST), manifest.ts (which tables are live), table-file.ts.
 */
import { join } from 'node:path'
import { listDir, readIfExists } from './files.js'
import { checkLog } from './log-file.js'
import { liveTables } from './manifest.js'
import { checkTable } from './table-file.js'

const LOG_FILE = /^\d+\.log$/
const TABLE_FILE = /^\d+\.(ldb|sst)$/

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
