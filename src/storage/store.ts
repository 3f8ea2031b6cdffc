import { statfs } from 'node:fs/promises'
import { Level } from 'level'
import createDebug from 'debug'
import { HomeLockedError, StorageError, StoreCorruptError } from '../errors.js'
import { findCorruption } from './leveldb-check/check.js'

const log = createDebug('meshq:store')

/** One write of a batch. `value: undefined` deletes the key. */
export interface StoreWrite {
  key: string
  value: Uint8Array | undefined
}

/**
 * The storage boundary of the ledger: a sorted key-value store with synced batches.
 * LevelDB in a node; tests may use the in-memory one.
 */
export interface KVStore {
  get: (key: string) => Promise<Uint8Array | undefined>
  getMany: (keys: string[]) => Promise<Array<Uint8Array | undefined>>
  /** Atomic; with `sync` the batch is on disk before the promise resolves. */
  batch: (writes: StoreWrite[], options?: { sync?: boolean }) => Promise<void>
  /** Entries whose key starts with `prefix`, in key order. */
  entries: (prefix: string) => AsyncIterable<[string, Uint8Array]>
  close: () => Promise<void>
}

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
  const guard = new TornLogGuard(db, location)
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

/** Free bytes the store needs before it reopens after a failed write: room for LevelDB to turn its log into a table. */
const REOPEN_FREE_BYTES = 16 * 1024 * 1024

/**
 * A write that failed (a full disk) can leave a torn record in LevelDB's log, and LevelDB, replaying
 * that log after a crash, drops the rest of the block the record is in and, since every later record
 * is then out of step with the blocks, everything after it: acknowledged writes included (measured:
 * 20 synced writes after a full-disk failure, all gone after a reopen). So nothing more is written to
 * a log that took a failed write: the next write first reopens the store, which replays the log (its
 * torn record is a write nobody was told succeeded) into a table and starts a new log.
 */
class TornLogGuard {
  private torn = false
  private reopening?: Promise<void>

  constructor (private readonly db: Level<string, Uint8Array>, private readonly location: string) {}

  writeFailed (): void {
    this.torn = true
  }

  /** Resolves once the store is open (not in the middle of a reopen). */
  async ready (): Promise<void> {
    await this.reopening?.catch(() => {})
  }

  async beforeWrite (): Promise<void> {
    await this.ready()
    if (!this.torn) return
    const free = await freeBytes(this.location)
    if (free < REOPEN_FREE_BYTES) {
      throw new StorageError(`cannot write to the ledger store: no space left on the device of ${this.location} (${Math.floor(free / 1024)} KiB free)`)
    }
    this.reopening ??= this.reopen().finally(() => { this.reopening = undefined })
    await this.reopening
  }

  private async reopen (): Promise<void> {
    log('reopening %s after a failed write', this.location)
    await this.db.close()
    await openLevel(this.db, this.location)
    this.torn = false
  }
}

async function freeBytes (location: string): Promise<number> {
  const fs = await statfs(location)
  return fs.bavail * fs.bsize
}

/** A KVStore in memory, for unit tests. */
export function memoryStore (): KVStore {
  const map = new Map<string, Uint8Array>()
  return {
    get: async key => map.get(key),
    getMany: async keys => keys.map(k => map.get(k)),
    async batch (writes) {
      for (const w of writes) {
        if (w.value === undefined) map.delete(w.key)
        else map.set(w.key, w.value)
      }
    },
    async * entries (prefix) {
      const keys = [...map.keys()].filter(k => k.startsWith(prefix)).sort()
      for (const k of keys) {
        const v = map.get(k)
        if (v !== undefined) yield [k, v]
      }
    },
    close: async () => {}
  }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
export const encodeJson = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value))
export const decodeJson = <T>(bytes: Uint8Array): T => JSON.parse(decoder.decode(bytes)) as T
