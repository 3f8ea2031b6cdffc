/** Adds `value` to the set under `key`, creating the set. */
export function addTo<K, V> (index: Map<K, Set<V>>, key: K, value: V): void {
  let set = index.get(key)
  if (set == null) index.set(key, set = new Set())
  set.add(value)
}
