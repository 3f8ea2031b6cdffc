/** One write of a batch. `value: undefined` deletes the key. */
export interface StoreWrite {
  key: string
  value: Uint8Array | undefined
}

/**
 * The storage boundary of the ledger: a sorted key-value store with synced batches.
 * LevelDB in a node (`level-store.ts`); tests may use the in-memory one (`memory-store.ts`).
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

const encoder = new TextEncoder()
const decoder = new TextDecoder()
export const encodeJson = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value))
export const decodeJson = <T>(bytes: Uint8Array): T => JSON.parse(decoder.decode(bytes)) as T
