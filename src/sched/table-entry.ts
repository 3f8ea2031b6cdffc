import type { JobSpec } from '../types.js'
import type { Derived } from '../crdt/derive.js'
import type { JobFacts } from '../crdt/facts.js'

/** A job in the job table: its facts and the state derived from them. */
export interface TableEntry {
  /** `facts.spec` is the spec as `mod` requests left it. */
  facts: JobFacts
  derived: Derived
  /** The spec as submitted, kept once a `mod` changed it. */
  submitted?: JobSpec
}
