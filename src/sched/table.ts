import { ControlKind, JobState, isTerminal } from '../types.js'
import type { Attempt, Control, JobId, JobSpec } from '../types.js'
import type { Clock } from '../clock.js'
import { addTo } from '../collections.js'
import { deriveJob, effectiveSpec } from '../crdt/derive.js'
import type { DeriveContext, Derived } from '../crdt/derive.js'
import createDebug from 'debug'
import { MetaMap, SegmentMap, factSubject, validFact } from '../crdt/facts.js'
import type { FactChange, JobFacts, LimitFact, PauseFact } from '../crdt/facts.js'
import { splitTaskId } from '../array-task.js'
import { ArrayBook } from './array-book.js'
import type { ArrayRecord } from './array-book.js'
import { ArrayTasks } from './array-tasks.js'
import type { Visit } from './array-tasks.js'
import type { Cap } from './claims/group-limits.js'
import { GroupControls } from './group-controls.js'
import { GroupCounts } from './group-counts.js'
import { JobLinks } from './job-links.js'
import { RunQueue, submittedFirst } from './run-order.js'
import { SealedJobs } from './sealed-jobs.js'
import type { SealedJob } from './sealed-jobs.js'
import { SegmentCounts } from './segment-counts.js'
import type { TableEntry } from './table-entry.js'
import type { UntouchedTasks } from './untouched-tasks.js'

export { runsBefore } from './run-order.js'
export { summarize } from './sealed-jobs.js'
export type { SealedJob } from './sealed-jobs.js'
export type { TableEntry } from './table-entry.js'

const log = createDebug('meshq:table')

export type JobChangeListener = (id: JobId, entry: TableEntry) => void

export interface JobTableInit {
  clock: Clock
  /** Whether an open attempt's lease is still held, as this replica sees it. */
  leaseAlive: (attempt: Attempt) => boolean
}

/**
 * The derived view of every job this replica knows: facts in, states out. A facade over the
 * indexes that make a state change cost O(affected jobs): who waits for whom (JobLinks), group and
 * segment counts, pauses and limits (GroupControls), the run queue and wake-ups (RunQueue), job
 * arrays (ArrayBook, ArrayTasks) and the jobs of sealed segments (SealedJobs).
 */
export class JobTable {
  private readonly clock: Clock
  private readonly entries = new Map<JobId, TableEntry>()
  private readonly links = new JobLinks()
  private readonly book = new ArrayBook()
  private readonly groups = new GroupCounts((a, b) => this.submittedBefore(a, b))
  private readonly segments = new SegmentCounts()
  private readonly controls: GroupControls
  private readonly queue = new RunQueue()
  private readonly arrays: ArrayTasks
  private readonly sealed: SealedJobs
  /** Attempts and controls received before their job's spec (patches carry no order between maps). */
  private readonly orphans = new Map<JobId, Set<FactChange>>()
  private readonly listeners = new Set<JobChangeListener>()
  private readonly arrayListeners = new Set<(array: JobId) => void>()
  private readonly ctx: DeriveContext

  constructor (init: JobTableInit) {
    this.clock = init.clock
    this.controls = new GroupControls(init.clock)
    this.ctx = {
      now: 0,
      jobState: id => {
        const entry = this.entries.get(id)
        if (entry == null) return this.sealed.get(id)?.state ?? this.book.state(id)
        return entry.derived.removed ? undefined : entry.derived.state
      },
      inheritedFailure: id => this.entries.get(id)?.derived.inheritedFailure === true,
      submittedBefore: (a, b) => this.submittedBefore(a, b),
      groupState: group => this.groups.progress(group),
      pause: group => this.controls.activePause(group),
      leaseAlive: init.leaseAlive
    }
    const count = this.count.bind(this)
    this.arrays = new ArrayTasks({
      book: this.book,
      links: this.links,
      queue: this.queue,
      ctx: this.ctx,
      count,
      addSpec: (spec, touched) => this.addSpec(spec, touched),
      recompute: ids => this.recompute(ids)
    })
    this.sealed = new SealedJobs({ entries: this.entries, arrays: this.arrays, book: this.book, links: this.links, segments: this.segments, count })
  }

  onChange (listener: JobChangeListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Called when the untouched tasks of an array change state or wait for another time (see UntouchedTasks). */
  onUntouchedChange (listener: (array: JobId) => void): () => void {
    this.arrayListeners.add(listener)
    return () => this.arrayListeners.delete(listener)
  }

  /** A job, or a task of an array (an untouched task's entry is made for the caller, who may only read it). */
  get (id: string): TableEntry | undefined {
    const entry = this.entries.get(id as JobId)
    if (entry != null) return entry.derived.removed ? undefined : entry
    const task = splitTaskId(id)
    const lazy = task == null ? undefined : this.arrays.of(task.array as JobId)
    if (task == null || lazy == null || !lazy.has(task.index) || lazy.derived.removed) return undefined
    return { facts: { spec: lazy.spec(task.index), attempts: new Map(), controls: new Map() }, derived: lazy.derived }
  }

  /** The untouched tasks of every array (see UntouchedTasks). */
  untouchedTasks (): Iterable<UntouchedTasks> {
    return this.arrays.all()
  }

  /** Every job not removed. */
  * all (): Iterable<[JobId, TableEntry]> {
    for (const item of this.entries) if (!item[1].derived.removed) yield item
  }

  /** A job of a sealed segment (not in memory: its full record is in the store). */
  sealedJob (id: string): SealedJob | undefined {
    return this.sealed.get(id as JobId)
  }

  sealedJobs (): IterableIterator<[JobId, SealedJob]> {
    return this.sealed.entries()
  }

  /** Whether every job of a segment holding `capacity` jobs has finished. */
  segmentSettled (seg: string, capacity: number): boolean {
    return this.segments.settled(seg, capacity)
  }

  /** The arrays of a segment whose spec is in memory: sealing keeps a record of each. */
  segmentArrays (seg: string): JobId[] {
    return this.arrays.inSegment(seg)
  }

  /** What stays in memory of a sealed array (see SealedJob.array). */
  summarizeArray (id: JobId): SealedJob | undefined {
    return this.sealed.summarizeArray(id)
  }

  /** Drops a settled segment's jobs from memory; returns the summaries that stay. */
  evict (seg: string): SealedJob[] {
    return this.sealed.evict(seg)
  }

  /** Forgets segments dropped by `meshq gc`: their jobs leave every index. */
  drop (segments: ReadonlySet<string>): void {
    this.sealed.drop(segments)
  }

  /** Takes in the summaries of a segment sealed before this start. */
  addSealed (summaries: SealedJob[]): void {
    this.sealed.add(summaries)
  }

  /** Whether a job that has not finished waits for this one, or for its group. */
  awaited (job: Pick<SealedJob, 'id' | 'group'>): boolean {
    const unsettled = (id: JobId): boolean => {
      const entry = this.entries.get(id)
      const state = entry == null ? this.book.state(id) : entry.derived.removed ? undefined : entry.derived.state
      return state != null && !isTerminal(state)
    }
    return [...this.links.dependantsOf(job.id)].some(unsettled) ||
      (job.group != null && [...this.links.groupDependantsOf(job.group)].some(unsettled))
  }

  /** A job array as far as this replica knows it: its spec (absent once sealed) and its tasks' states. */
  array (id: string): ArrayRecord | undefined {
    return this.book.get(id as JobId)
  }

  /** The state of a whole array (see arrayState), if this replica knows it. */
  arrayState (id: string): JobState | undefined {
    return this.book.state(id as JobId)
  }

  /** Every job array known here, sealed or not. */
  allArrays (): Iterable<[JobId, ArrayRecord]> {
    return this.book.entries()
  }

  byKey (key: string): JobId | undefined {
    return this.links.byKey(key)
  }

  /** Every job of the group; an array of the group stands for all its tasks. */
  groupJobs (group: string): JobId[] {
    const ids = new Set<JobId>()
    for (const member of this.links.membersOf(group)) for (const id of this.arrays.expand(member)) ids.add(id)
    return [...ids]
  }

  /** The pause in force for a group, if any. */
  activePause (group: string): { until?: number } | undefined {
    return this.controls.activePause(group)
  }

  /** The highest pause stamp for a group, so that a new pause or resume supersedes it. */
  pauseStamp (group: string): number {
    return this.controls.pauseStamp(group)
  }

  /** The cap on the group's jobs running at once across the mesh, if any. */
  limitOf (group: string): number | undefined {
    return this.controls.limitOf(group)
  }

  limitStamp (group: string): number {
    return this.controls.limitStamp(group)
  }

  /** The caps a job runs under: its group's limit and its array's limit. */
  capsOf (spec: JobSpec): Cap[] {
    return this.controls.capsOf(spec)
  }

  /** Every group with a limit in force. */
  limited (): Iterable<[string, number]> {
    return this.controls.limited()
  }

  /** Takes in facts from the ledger (local, loaded or from peers) and updates derived states. */
  ingest (changes: FactChange[]): void {
    const touched = new Set<JobId>()
    const changedGroups = new Set<string>()
    for (const change of changes) {
      if (!validFact(change)) {
        log('ignoring malformed fact %s/%s', change.doc, change.key)
        continue
      }
      const subject = factSubject(change.key)
      if (change.map === SegmentMap.jobs) this.addSubmitted(change.value as JobSpec, touched)
      else if (change.map === SegmentMap.attempts || change.map === SegmentMap.controls) this.addJobFact(change, touched)
      else if (change.map === MetaMap.pauses) this.addPause(change.value as PauseFact, subject, changedGroups)
      else if (change.map === MetaMap.limits && this.controls.offerLimit(subject, change.value as LimitFact)) changedGroups.add(subject)
    }
    for (const group of changedGroups) for (const id of this.links.membersOf(group)) touched.add(id)
    this.recompute(touched, touched)
  }

  /** Re-derives jobs whose wait (delay, backoff, pause) has ended; returns the next wake-up time. */
  wakeDue (): number | undefined {
    this.recompute(this.queue.due(this.clock.now()))
    return this.queue.nextWakeup()
  }

  /** Puts a ready job back in the run queue after an attempt to start it came to nothing (a lost claim). */
  requeue (id: JobId): void {
    const entry = this.entries.get(id)
    if (entry?.derived.state === JobState.ready && !entry.derived.removed) this.queue.push(entry.facts.spec)
  }

  /** Re-derives some jobs, e.g. after a lease expired or a local run ended. */
  refresh (ids: Iterable<JobId>): void {
    this.recompute(new Set(ids))
  }

  /**
   * Ready jobs in run order. `visit` returns true to take the job (it leaves the ready heap),
   * false to skip it (it stays), or 'stop' to end the walk.
   */
  takeReady (visit: Visit): void {
    const skipped: JobSpec[] = []
    for (let spec = this.queue.pop(); spec != null; spec = this.queue.pop()) {
      const verdict = this.offer(spec, visit)
      if (verdict === true || verdict === 'stale') continue
      skipped.push(spec)
      if (verdict === 'stop') break
    }
    for (const spec of skipped) this.queue.push(spec)
  }

  /** Offers a job of the run queue to `visit`; an array's spec stands for its untouched tasks, the first of which is offered. */
  private offer (spec: JobSpec, visit: Visit): boolean | 'stop' | 'stale' {
    const lazy = this.arrays.of(spec.id)
    if (lazy != null) return this.arrays.offer(lazy, spec, visit)
    const entry = this.entries.get(spec.id)
    if (entry?.derived.state !== JobState.ready || entry.facts.spec !== spec) return 'stale' // stale heap entry
    return visit(spec)
  }

  /** A spec from the ledger: a job, or an array that stands for one task per index. */
  private addSubmitted (spec: JobSpec, touched: Set<JobId>): void {
    if (spec.array == null) {
      this.addSpec(spec, touched)
      return
    }
    if (this.book.get(spec.id)?.spec != null) return // specs are written once
    this.sealed.unseal(spec)
    const lazy = this.arrays.add(spec)
    this.segments.countArraySpec(spec.id)
    this.link(spec, touched)
    // facts about tasks that came before the array's spec
    for (const [id, facts] of this.orphans) {
      const task = splitTaskId(id)
      if (task?.array !== spec.id || !lazy.has(task.index)) continue
      this.arrays.materialize(lazy, task.index, touched)
      for (const fact of facts) this.addJobFact(fact, touched)
      this.orphans.delete(id)
    }
  }

  private addSpec (spec: JobSpec, touched: Set<JobId>): void {
    if (this.entries.has(spec.id)) return // specs are written once
    this.sealed.unseal(spec) // its segment is loaded again: it is counted anew below
    const facts: JobFacts = { spec, attempts: new Map(), controls: new Map() }
    // counted in as removed (settled, in no group) so that its first derivation moves it to its real counts
    const placeholder: Derived = { state: JobState.pending, removed: true, lamport: 0, epoch: 0 }
    this.entries.set(spec.id, { facts, derived: placeholder })
    this.count(spec, placeholder, +1)
    this.link(spec, touched)
    for (const fact of this.orphans.get(spec.id) ?? []) this.addJobFact(fact, touched)
    this.orphans.delete(spec.id)
  }

  /** Indexes a new job or array, which is re-derived with the jobs that waited for it while it was unknown here. */
  private link (spec: JobSpec, touched: Set<JobId>): void {
    this.links.link(spec)
    this.links.claimKey(spec, id => this.entries.get(id)?.facts.spec ?? this.book.get(id)?.spec)
    touched.add(spec.id)
    for (const id of this.links.dependantsOf(spec.id)) touched.add(id)
  }

  /** Records an attempt or control; facts that arrive before their job's spec wait for it. */
  private addJobFact (change: FactChange, touched: Set<JobId>): void {
    const id = factSubject(change.key) as JobId
    const task = this.entries.has(id) ? undefined : splitTaskId(id)
    const lazy = task == null ? undefined : this.arrays.of(task.array)
    if (task != null && lazy?.has(task.index) === true) this.arrays.materialize(lazy, task.index, touched)
    const entry = this.entries.get(id)
    if (entry == null) {
      addTo(this.orphans, id, change)
      return
    }
    if (change.map === SegmentMap.attempts) entry.facts.attempts.set(change.key, change.value as Attempt)
    else entry.facts.controls.set(change.key, change.value as Control)
    if ((change.value as Control).kind === ControlKind.modify) this.applyPatches(entry)
    touched.add(id)
  }

  /** Recomputes a job's spec after a `mod`; a ready job goes into the run queue under its new priority. */
  private applyPatches (entry: TableEntry): void {
    entry.submitted ??= entry.facts.spec
    entry.facts.spec = effectiveSpec(entry.submitted, entry.facts.controls.values())
    if (entry.derived.state === JobState.ready && !entry.derived.removed) this.queue.push(entry.facts.spec)
  }

  private addPause (fact: PauseFact, group: string, changed: Set<string>): void {
    if (!this.controls.offerPause(group, fact)) return
    changed.add(group)
    if (fact.paused && fact.until != null) for (const id of this.links.membersOf(group)) this.queue.wakeAt(fact.until, id)
  }

  /** Submit order (time, the submitter's sequence, id): the same on every replica, and without cycles. */
  private submittedBefore (a: JobId, b: JobId): boolean {
    const first = this.entries.get(a)?.facts.spec ?? this.sealed.get(a) ?? this.book.get(a)?.spec
    const second = this.entries.get(b)?.facts.spec ?? this.sealed.get(b) ?? this.book.get(b)?.spec
    return first != null && second != null && submittedFirst(first, second)
  }

  private recompute (ids: Set<JobId>, announce: Set<JobId> = new Set()): void {
    this.ctx.now = this.clock.now()
    const work = [...ids]
    const changed = new Set<JobId>()
    const changedArrays = new Set<JobId>()
    while (work.length > 0) {
      const id = work.pop() as JobId
      const entry = this.entries.get(id)
      if (entry == null) {
        const lazy = this.arrays.of(id)
        if (lazy != null && this.arrays.rederive(lazy, work)) changedArrays.add(id)
        continue
      }
      if (this.rederive(id, entry, work) || announce.has(id)) changed.add(id)
    }
    for (const id of changed) {
      const entry = this.entries.get(id) as TableEntry
      for (const listener of this.listeners) listener(id, entry)
    }
    for (const id of changedArrays) for (const listener of this.arrayListeners) listener(id)
  }

  /** Re-derives one job, adding to `work` the jobs to re-derive next; returns whether its state or its reason changed. */
  private rederive (id: JobId, entry: TableEntry, work: JobId[]): boolean {
    const before = entry.derived
    const after = deriveJob(entry.facts, this.ctx)
    entry.derived = after
    const { spec } = entry.facts
    const stateChanged = before.state !== after.state || before.removed !== after.removed || before.inheritedFailure !== after.inheritedFailure
    if (stateChanged) {
      this.count(spec, before, -1)
      this.count(spec, after, +1)
      for (const dep of this.links.dependantsOf(id)) work.push(dep)
      if (spec.arrayId != null) for (const dep of this.links.dependantsOf(spec.arrayId)) work.push(dep)
      if (spec.group != null) for (const dep of this.links.groupDependantsOf(spec.group)) work.push(dep)
      if (after.state === JobState.ready && !after.removed) this.queue.push(spec)
    }
    if (after.wakeAt != null && after.wakeAt !== before.wakeAt) this.queue.wakeAt(after.wakeAt, id)
    return stateChanged || before.reason !== after.reason
  }

  /** Counts `weight` jobs in a state in or out of their group, segment and array, so that checks on them cost O(1). */
  private count (spec: Pick<JobSpec, 'id' | 'group'>, derived: Derived, sign: 1 | -1, weight = 1): void {
    // an array's tasks count in their segment as the one spec they come from
    const specs = this.book.count(spec.id, derived, sign * weight)
    this.segments.count(spec.id, derived, sign * specs, sign * weight)
    this.groups.count(spec, derived, sign, weight)
  }
}
