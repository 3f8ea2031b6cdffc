/**
 * A job's attempts and controls in the job table. A queued job has none, and two empty Maps per job
 * cost about 370 bytes (docs/scale.md, "Memory per queued job"), so every job starts with one shared
 * empty map that refuses writes, and gets a map of its own with its first fact.
 */
class SharedEmptyMap extends Map<string, never> {
  override set (): never {
    throw new TypeError('the shared empty map of facts is read-only (use withFact)')
  }
}

const NO_FACTS = new SharedEmptyMap()

/** The shared empty map a job's attempts or controls start as. */
export function noFacts<V> (): Map<string, V> {
  return NO_FACTS as Map<string, unknown> as Map<string, V>
}

/** `facts` with `key` set to `value`: the same map, or a new one in place of the shared empty one. */
export function withFact<V> (facts: Map<string, V>, key: string, value: V): Map<string, V> {
  const own = (facts as Map<string, unknown>) === NO_FACTS ? new Map<string, V>() : facts
  own.set(key, value)
  return own
}
