import { compareStamps } from '../crdt/facts.js'
import type { GroupFact } from '../crdt/facts.js'

/** The latest setting of each group: a fact replaces the current one only with a higher stamp. */
export class GroupSettings<T extends GroupFact> {
  private readonly facts = new Map<string, T>()

  get (group: string): T | undefined {
    return this.facts.get(group)
  }

  /** The highest stamp for a group, so that a new setting supersedes it. */
  stamp (group: string): number {
    return this.facts.get(group)?.lamport ?? 0
  }

  /** Takes a fact in; false if an equal or later one is in force. */
  offer (group: string, fact: T): boolean {
    const current = this.facts.get(group)
    if (current != null && compareStamps(fact, current) <= 0) return false
    this.facts.set(group, fact)
    return true
  }

  entries (): IterableIterator<[string, T]> {
    return this.facts.entries()
  }
}
