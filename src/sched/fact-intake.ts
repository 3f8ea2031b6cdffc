import { ControlKind, JobState } from '../types.js'
import type { Attempt, Control, JobId, JobSpec } from '../types.js'
import { addTo } from '../collections.js'
import { effectiveSpec } from '../crdt/derive.js'
import type { Derived } from '../crdt/derive.js'
import createDebug from 'debug'
import { MetaMap, SegmentMap, factSubject, validFact } from '../crdt/facts.js'
import type { FactChange, JobFacts, LimitFact, PauseFact } from '../crdt/facts.js'
import { splitTaskId } from '../array-task.js'
import type { ArrayBook } from './array-book.js'
import type { ArrayTasks } from './array-tasks.js'
import type { GroupControls } from './group-controls.js'
import type { JobLinks } from './job-links.js'
import type { RunQueue } from './run-order.js'
import type { SealedJobs } from './sealed-jobs.js'
import type { SegmentCounts } from './segment-counts.js'
import { noFacts, withFact } from './fact-maps.js'
import { SpecPool } from './spec-pool.js'
import type { TableEntry } from './table-entry.js'

const log = createDebug('meshq:table')

export interface FactIntakeInit {
  /** The job table's entries, to which new jobs are added. */
  entries: Map<JobId, TableEntry>
  arrays: ArrayTasks
  book: ArrayBook
  links: JobLinks
  sealed: SealedJobs
  segments: SegmentCounts
  controls: GroupControls
  queue: RunQueue
  /** Counts a job in (`sign` 1) or out (-1) of the group, segment and array counts. */
  count: (spec: Pick<JobSpec, 'id' | 'group'>, derived: Derived, sign: 1 | -1) => void
}

/** Takes facts into the job table's entries and indexes; the table then re-derives the jobs they touched. */
export class FactIntake {
  /** Attempts and controls received before their job's spec (patches carry no order between maps). */
  private readonly orphans = new Map<JobId, Set<FactChange>>()
  private readonly specs = new SpecPool()

  constructor (private readonly init: FactIntakeInit) {}

  /** Takes in facts from the ledger (local, loaded or from peers); returns the jobs to re-derive. */
  take (changes: FactChange[]): Set<JobId> {
    const touched = new Set<JobId>()
    const changedGroups = new Set<string>()
    for (const change of changes) {
      if (!validFact(change)) {
        log('ignoring malformed fact %s/%s', change.doc, change.key)
        continue
      }
      if (change.map === SegmentMap.jobs) this.addSubmitted(change.value as JobSpec, touched)
      else if (change.map === SegmentMap.attempts || change.map === SegmentMap.controls) this.addJobFact(change, touched)
      else if (change.map === MetaMap.pauses) this.addPause(change.value as PauseFact, factSubject(change.key), changedGroups)
      else if (change.map === MetaMap.limits) this.addLimit(change.value as LimitFact, factSubject(change.key), changedGroups)
    }
    for (const group of changedGroups) for (const id of this.init.links.membersOf(group)) touched.add(id)
    return touched
  }

  /** Gives a job an entry, counted in as removed (settled, in no group) so that its first derivation moves it to its real counts. */
  addSpec (spec: JobSpec, touched: Set<JobId>): void {
    const { entries, sealed, count } = this.init
    if (entries.has(spec.id)) return // specs are written once
    sealed.unseal(spec) // its segment is loaded again: it is counted anew below
    const facts: JobFacts = { spec: this.specs.compact(spec), attempts: noFacts(), controls: noFacts() }
    const placeholder: Derived = { state: JobState.pending, removed: true, lamport: 0, epoch: 0 }
    entries.set(spec.id, { facts, derived: placeholder })
    count(spec, placeholder, +1)
    this.link(spec, touched)
    for (const fact of this.orphans.get(spec.id) ?? []) this.addJobFact(fact, touched)
    this.orphans.delete(spec.id)
  }

  /** A spec from the ledger: a job, or an array that stands for one task per index. */
  private addSubmitted (spec: JobSpec, touched: Set<JobId>): void {
    if (spec.array == null) {
      this.addSpec(spec, touched)
      return
    }
    const { arrays, book, sealed, segments } = this.init
    if (book.get(spec.id)?.spec != null) return // specs are written once
    sealed.unseal(spec) // its segment is loaded again
    const lazy = arrays.add(spec)
    segments.countArraySpec(spec.id)
    this.link(spec, touched)
    // facts about tasks that came before the array's spec
    for (const [id, facts] of this.orphans) {
      const task = splitTaskId(id)
      if (task?.array !== spec.id || !lazy.has(task.index)) continue
      arrays.materialize(lazy, task.index, touched)
      for (const fact of facts) this.addJobFact(fact, touched)
      this.orphans.delete(id)
    }
  }

  /** Indexes a new job or array, to be derived with the jobs that waited for it while it was unknown here. */
  private link (spec: JobSpec, touched: Set<JobId>): void {
    const { entries, book, links } = this.init
    links.link(spec)
    links.claimKey(spec, id => entries.get(id)?.facts.spec ?? book.get(id)?.spec)
    touched.add(spec.id)
    for (const id of links.dependantsOf(spec.id)) touched.add(id)
  }

  /** Records an attempt or control; facts that arrive before their job's spec wait for it. */
  private addJobFact (change: FactChange, touched: Set<JobId>): void {
    const { entries, arrays } = this.init
    const id = factSubject(change.key) as JobId
    const task = entries.has(id) ? undefined : splitTaskId(id)
    const lazy = task == null ? undefined : arrays.of(task.array)
    if (task != null && lazy?.has(task.index) === true) arrays.materialize(lazy, task.index, touched)
    const entry = entries.get(id)
    if (entry == null) {
      addTo(this.orphans, id, change)
      return
    }
    const { facts } = entry
    if (change.map === SegmentMap.attempts) facts.attempts = withFact(facts.attempts, change.key, change.value as Attempt)
    else facts.controls = withFact(facts.controls, change.key, change.value as Control)
    if ((change.value as Control).kind === ControlKind.modify) this.applyPatches(entry)
    touched.add(id)
  }

  /** Recomputes a job's spec after a `mod`; a ready job goes into the run queue under its new priority. */
  private applyPatches (entry: TableEntry): void {
    entry.submitted ??= entry.facts.spec
    entry.facts.spec = effectiveSpec(entry.submitted, entry.facts.controls.values())
    if (entry.derived.state === JobState.ready && !entry.derived.removed) this.init.queue.push(entry.facts.spec)
  }

  private addPause (fact: PauseFact, group: string, changed: Set<string>): void {
    if (!this.init.controls.offerPause(group, fact)) return
    changed.add(group)
    if (fact.paused && fact.until != null) for (const id of this.init.links.membersOf(group)) this.init.queue.wakeAt(fact.until, id)
  }

  private addLimit (fact: LimitFact, group: string, changed: Set<string>): void {
    if (this.init.controls.offerLimit(group, fact)) changed.add(group)
  }
}
