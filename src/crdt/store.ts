import { Level } from 'level'
import createDebug from 'debug'
import { HomeLockedError, StorageError, StoreCorruptError } from '../errors.js'

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

/** Opens the node's LevelDB, refusing a directory that another node holds or that is corrupt. */
export async function openLevelStore (location: string): Promise<KVStore> {
  const db = new Level<string, Uint8Array>(location, { valueEncoding: 'view' })
  try {
    await db.open()
  } catch (err) {
    const code = levelCode(err)
    const cause = (err as { cause?: Error }).cause?.message ?? (err as Error).message
    if (code === 'LEVEL_LOCKED') throw new HomeLockedError(`another meshq node is already running with this home (${location} is locked)`)
    if (code === 'LEVEL_CORRUPTION' || /corrupt/i.test(cause)) {
      throw new StoreCorruptError(`the ledger store at ${location} is corrupt (${cause}); no job was dropped. ` +
        'Move the directory aside: the node\'s identity is in it, so start again with --join and a new token from a member ' +
        '(meshq invite), and evict the old peer id; a one-node cluster restarts as a new cluster')
    }
    throw new StorageError(`cannot open the ledger store at ${location}: ${cause}`)
  }
  log('opened %s', location)
  return {
    get: async key => await db.get(key),
    getMany: async keys => await db.getMany(keys),
    async batch (writes, options) {
      if (writes.length === 0) return
      try {
        await db.batch(writes.map(w => w.value === undefined
          ? { type: 'del' as const, key: w.key }
          : { type: 'put' as const, key: w.key, value: w.value }), { sync: options?.sync ?? false })
      } catch (err) {
        throw new StorageError(`cannot write to the ledger store: ${(err as Error).message}`)
      }
    },
    async * entries (prefix) {
      // '\xff' sorts after every key character we use
      for await (const entry of db.iterator({ gte: prefix, lt: prefix + '\xff' })) yield entry
    },
    close: async () => { await db.close() }
  }
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
