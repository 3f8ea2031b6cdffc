import { Level } from 'level'
import createDebug from 'debug'
import { HomeLockedError, StorageError, StoreCorruptError } from '../errors.js'
import { findCorruption } from './leveldb-check/check.js'
import type { KVStore } from './store.js'
import { TornLogGuard } from './torn-log-guard.js'

const log = createDebug('meshq:store')

function levelCode (err: unknown): string | undefined {
  const e = err as { code?: string, cause?: { code?: string } }
  return e?.cause?.code ?? e?.code
}

function corruptError (location: string, cause: string): StoreCorruptError {
  return new StoreCorruptError(`the ledger store at ${location} is corrupt (${cause}); no job was dropped. ` +
    'Move the directory aside: the node\'s identity is in it, so start again with --join and a new token from a member ' +
    '(meshq invite), and evict the old peer id; a one-node cluster restarts as a new cluster')
}

/** Refuses a store that LevelDB would open while silently dropping what is damaged (see leveldb-check/). */
async function checkStore (location: string): Promise<void> {
  let problem: string | undefined
  try {
    problem = await findCorruption(location)
  } catch (err) {
    throw new StorageError(`cannot check the ledger store at ${location}: ${(err as Error).message}`)
  }
  if (problem !== undefined) throw corruptError(location, problem)
}

/** Opens the node's LevelDB, refusing a directory that another node holds or that is corrupt. */
export async function openLevelStore (location: string): Promise<KVStore> {
  await checkStore(location)
  const db = new Level<string, Uint8Array>(location, { valueEncoding: 'view' })
  await openLevel(db, location)
  log('opened %s', location)
  const guard = new TornLogGuard(location, async () => {
    await db.close()
    await openLevel(db, location)
  })
  return {
    get: async key => { await guard.ready(); return await db.get(key) },
    getMany: async keys => { await guard.ready(); return await db.getMany(keys) },
    async batch (writes, options) {
      if (writes.length === 0) return
      await guard.beforeWrite()
      try {
        await db.batch(writes.map(w => w.value === undefined
          ? { type: 'del' as const, key: w.key }
          : { type: 'put' as const, key: w.key, value: w.value }), { sync: options?.sync ?? false })
      } catch (err) {
        guard.writeFailed()
        throw new StorageError(`cannot write to the ledger store: ${(err as Error).message}`)
      }
    },
    async * entries (prefix) {
      await guard.ready()
      // '\xff' sorts after every key character we use
      for await (const entry of db.iterator({ gte: prefix, lt: prefix + '\xff' })) yield entry
    },
    close: async () => { await guard.ready(); await db.close() }
  }
}

async function openLevel (db: Level<string, Uint8Array>, location: string): Promise<void> {
  try {
    await db.open()
  } catch (err) {
    const code = levelCode(err)
    const cause = (err as { cause?: Error }).cause?.message ?? (err as Error).message
    if (code === 'LEVEL_LOCKED') throw new HomeLockedError(`another meshq node is already running with this home (${location} is locked)`)
    if (code === 'LEVEL_CORRUPTION' || /corrupt/i.test(cause)) throw corruptError(location, cause)
    throw new StorageError(`cannot open the ledger store at ${location}: ${cause}`)
  }
}
