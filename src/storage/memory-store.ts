import type { KVStore } from './store.js'

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
