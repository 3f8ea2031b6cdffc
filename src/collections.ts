/** Adds `value` to the set under `key`, creating the set. */
export function addTo<K, V> (index: Map<K, Set<V>>, key: K, value: V): void {
  let set = index.get(key)
  if (set == null) index.set(key, set = new Set())
  set.add(value)
}

/** Calls `fn` on every item, at most `limit` at a time; resolves when all are done, rejects with the first error. */
export async function forEachLimit<T> (items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++])
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}
