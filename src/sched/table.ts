import { ControlKind, JobState, isTerminal } from '../types.js'
import type { Attempt, Control, JobId, JobSpec } from '../types.js'
import type { Clock } from '../clock.js'
import { addTo } from '../collections.js'
import { deriveJob, effectiveSpec } from '../crdt/derive.js'
import type { DeriveContext, Derived, GroupProgress } from '../crdt/derive.js'
import createDebug from 'debug'
import { MetaMap, SegmentMap, compareStamps, factSubject, segmentOf, validFact } from '../crdt/facts.js'
import type { FactChange, GroupFact, JobFacts, LimitFact, PauseFact } from '../crdt/facts.js'
import { Heap } from './heap.js'
import { ArrayBook } from './array-book.js'
import { UntouchedTasks } from './untouched-tasks.js'
import { splitTaskId, taskId } from '../array-task.js'
import type { ArrayRecord } from './array-book.js'
import type { Cap } from './claims/group-limits.js'
import { dependenciesOf, groupDependenciesOf } from '../jobs/dependencies.js'

const log = createDebug('meshq:table')

export interface TableEntry {
  /** `facts.spec` is the spec as `mod` requests left it. */
  facts: JobFacts
  derived: Derived
  /** The spec as submitted, kept once a `mod` changed it. */
  submitted?: JobSpec
}

export type JobChangeListener = (id: JobId, entry: TableEntry) => void

export interface JobTableInit {
  clock: Clock
  /** Whether an open attempt's lease is still held, as this replica sees it. */
  leaseAlive: (attempt: Attempt) => boolean
}

interface GroupCounts {
  total: number
  done: number
  /** Failed or killed by their own attempts or a kill. */
  failed: Set<JobId>
  /** Failed only because of a dependency. */
  inherited: Set<JobId>
}

export interface SealedJob {
  id: JobId
  state: JobState
  group?: string
  key?: string
  submittedAt: number
  seq: number
  /** The record of a whole array: its tasks have records of their own, which are what is counted. */
  array?: true
}

/** The latest setting of each group: a fact replaces the current one only with a higher stamp. */
class GroupSettings<T extends GroupFact> {
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

/** Run order: higher priority first, then submit order (time, then the submitter's sequence). */
export function runsBefore (a: JobSpec, b: JobSpec): boolean {
  if (a.pri !== b.pri) return a.pri > b.pri
  if (a.submittedAt !== b.submittedAt) return a.submittedAt < b.submittedAt
  if (a.seq !== b.seq) return a.seq < b.seq
  if (a.arrayIndex !== b.arrayIndex) return (a.arrayIndex ?? -1) < (b.arrayIndex ?? -1)
  return a.id < b.id
}

/**
 * The derived view of every job this replica knows: facts in, states out. Keeps the indexes that
 * make a state change cost O(affected jobs): dependants by job and by group, group counts,
 * a priority heap of ready jobs and a heap of time-based wake-ups.
 */
export class JobTable {
  private readonly clock: Clock
  private readonly entries = new Map<JobId, TableEntry>()
  private readonly groupMembers = new Map<string, Set<JobId>>()
  private readonly groupCounts = new Map<string, GroupCounts>()
  private readonly dependants = new Map<JobId, Set<JobId>>()
  private readonly groupDependants = new Map<string, Set<JobId>>()
  private readonly pauses = new GroupSettings<PauseFact>()
  private readonly limits = new GroupSettings<LimitFact>()
  private readonly idempotency = new Map<string, JobId>()
  private readonly arrays = new ArrayBook()
  /** Each array's tasks that no fact touched yet: one record per array, not an entry per task. */
  private readonly untouched = new Map<JobId, UntouchedTasks>()
  /** Jobs of sealed segments: their final state, enough for dependants, groups and listings. */
  private readonly sealed = new Map<JobId, SealedJob>()
  private readonly segmentCounts = new Map<string, { total: number, unsettled: number }>()
  /** Attempts and controls received before their job's spec (patches carry no order between maps). */
  private readonly orphans = new Map<JobId, Set<FactChange>>()
  private readonly ready = new Heap<JobSpec>(runsBefore)
  private readonly wakeups = new Heap<{ at: number, id: JobId }>((a, b) => a.at < b.at)
  private readonly listeners = new Set<JobChangeListener>()
  private readonly arrayListeners = new Set<(array: JobId) => void>()
  private readonly ctx: DeriveContext

  constructor (init: JobTableInit) {
    this.clock = init.clock
    this.ctx = {
      now: 0,
      jobState: id => {
        const entry = this.entries.get(id)
        if (entry == null) return this.sealed.get(id)?.state ?? this.arrays.state(id)
        return entry.derived.removed ? undefined : entry.derived.state
      },
      inheritedFailure: id => this.entries.get(id)?.derived.inheritedFailure === true,
      submittedBefore: (a, b) => this.submittedBefore(a, b),
      groupState: group => this.groupProgress(group),
      pause: group => this.activePause(group),
      leaseAlive: init.leaseAlive
    }
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
    const lazy = task == null ? undefined : this.untouched.get(task.array as JobId)
    if (task == null || lazy == null || !lazy.has(task.index) || lazy.derived.removed) return undefined
    return { facts: { spec: lazy.spec(task.index), attempts: new Map(), controls: new Map() }, derived: lazy.derived }
  }

  /** The untouched tasks of every array (see UntouchedTasks). */
  untouchedTasks (): Iterable<UntouchedTasks> {
    return this.untouched.values()
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
    const counts = this.segmentCounts.get(seg)
    return counts != null && counts.total >= capacity && counts.unsettled === 0
  }

  /** The arrays of a segment whose spec is in memory: sealing keeps a record of each. */
  segmentArrays (seg: string): JobId[] {
    return [...this.untouched.keys()].filter(id => segmentOf(id) === seg)
  }

  /** What stays in memory of a sealed array (see SealedJob.array). */
  summarizeArray (id: JobId): SealedJob | undefined {
    const lazy = this.untouched.get(id)
    const state = this.arrays.state(id)
    if (lazy == null || state == null) return undefined
    const { group, key, submittedAt, seq } = lazy.array
    return { id, state, group, key, submittedAt, seq, array: true }
  }

  /** Drops a settled segment's jobs from memory; returns the summaries that stay. */
  evict (seg: string): SealedJob[] {
    const summaries: SealedJob[] = []
    for (const id of this.segmentArrays(seg)) {
      const summary = this.summarizeArray(id)
      if (summary != null) this.sealed.set(id, summary)
      this.untouched.delete(id)
      this.arrays.forget(id)
    }
    for (const [id, entry] of this.entries) {
      if (segmentOf(id) !== seg) continue
      this.entries.delete(id)
      if (entry.derived.removed) continue
      const summary = summarize(entry)
      this.sealed.set(id, summary)
      summaries.push(summary)
    }
    return summaries
  }

  /** Forgets segments dropped by `meshq gc`: their jobs leave every index. */
  drop (segments: ReadonlySet<string>): void {
    for (const seg of segments) this.evict(seg)
    for (const [id, job] of this.sealed) {
      if (!segments.has(segmentOf(id) as string)) continue
      this.sealed.delete(id)
      this.count(job, { state: job.state, removed: false, lamport: 0, epoch: 0 }, -1)
      if (job.group != null) this.groupMembers.get(job.group)?.delete(id)
      if (job.key != null && this.idempotency.get(job.key) === id) this.idempotency.delete(job.key)
    }
    for (const seg of segments) this.segmentCounts.delete(seg)
  }

  /** Whether a job that has not finished waits for this one, or for its group. */
  awaited (job: Pick<SealedJob, 'id' | 'group'>): boolean {
    const unsettled = (id: JobId): boolean => {
      const entry = this.entries.get(id)
      const state = entry == null ? this.arrays.state(id) : entry.derived.removed ? undefined : entry.derived.state
      return state != null && !isTerminal(state)
    }
    return [...this.dependants.get(job.id) ?? []].some(unsettled) ||
      (job.group != null && [...this.groupDependants.get(job.group) ?? []].some(unsettled))
  }

  /** Takes in the summaries of a segment sealed before this start. */
  addSealed (summaries: SealedJob[]): void {
    for (const job of summaries) {
      this.sealed.set(job.id, job)
      if (job.array === true) continue // its tasks are counted
      if (job.group != null) addTo(this.groupMembers, job.group, job.id)
      if (job.key != null && !this.idempotency.has(job.key)) this.idempotency.set(job.key, job.id)
      this.count(job, { state: job.state, removed: false, lamport: 0, epoch: 0 }, +1)
    }
  }

  /** A job array as far as this replica knows it: its spec (absent once sealed) and its tasks' states. */
  array (id: string): ArrayRecord | undefined {
    return this.arrays.get(id as JobId)
  }

  /** The state of a whole array (see arrayState), if this replica knows it. */
  arrayState (id: string): JobState | undefined {
    return this.arrays.state(id as JobId)
  }

  /** Every job array known here, sealed or not. */
  allArrays (): Iterable<[JobId, ArrayRecord]> {
    return this.arrays.entries()
  }

  byKey (key: string): JobId | undefined {
    return this.idempotency.get(key)
  }

  /** Every job of the group; an array of the group stands for all its tasks. */
  groupJobs (group: string): JobId[] {
    const ids = new Set<JobId>()
    for (const id of this.groupMembers.get(group) ?? []) {
      const lazy = this.untouched.get(id)
      if (lazy == null) ids.add(id)
      else for (const index of lazy.indices()) ids.add(taskId(id, index))
    }
    return [...ids]
  }

  /** The pause in force for a group, if any. */
  activePause (group: string): { until?: number } | undefined {
    const pause = this.pauses.get(group)
    if (pause == null || !pause.paused) return undefined
    if (pause.until != null && pause.until <= this.clock.now()) return undefined
    return { until: pause.until }
  }

  /** The highest pause stamp for a group, so that a new pause or resume supersedes it. */
  pauseStamp (group: string): number {
    return this.pauses.stamp(group)
  }

  /** The cap on the group's jobs running at once across the mesh, if any. */
  limitOf (group: string): number | undefined {
    return this.limits.get(group)?.limit ?? undefined
  }

  limitStamp (group: string): number {
    return this.limits.stamp(group)
  }

  /** The caps a job runs under: its group's limit and its array's limit. */
  capsOf (spec: JobSpec): Cap[] {
    const caps: Cap[] = []
    const groupLimit = spec.group == null ? undefined : this.limitOf(spec.group)
    if (groupLimit != null) caps.push({ key: `group ${spec.group as string}`, limit: groupLimit })
    if (spec.arrayId != null && spec.arrayLimit != null) caps.push({ key: `array ${spec.arrayId}`, limit: spec.arrayLimit })
    return caps
  }

  /** Every group with a limit in force. */
  * limited (): Iterable<[string, number]> {
    for (const [group, fact] of this.limits.entries()) if (fact.limit != null) yield [group, fact.limit]
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
      if (change.map === SegmentMap.jobs) this.addSubmitted(change.value as JobSpec, touched)
      else if (change.map === SegmentMap.attempts || change.map === SegmentMap.controls) this.addJobFact(change, touched)
      else if (change.map === MetaMap.pauses) this.addPause(change.value as PauseFact, factSubject(change.key), changedGroups)
      else if (change.map === MetaMap.limits && this.limits.offer(factSubject(change.key), change.value as LimitFact)) changedGroups.add(factSubject(change.key))
    }
    for (const group of changedGroups) for (const id of this.groupMembers.get(group) ?? []) touched.add(id)
    this.recompute(touched, touched)
  }

  /** Re-derives jobs whose wait (delay, backoff, pause) has ended; returns the next wake-up time. */
  wakeDue (): number | undefined {
    const now = this.clock.now()
    const due = new Set<JobId>()
    while ((this.wakeups.peek()?.at ?? Infinity) <= now) due.add((this.wakeups.pop() as { id: JobId }).id)
    this.recompute(due)
    return this.wakeups.peek()?.at
  }

  /** Puts a ready job back in the run queue after an attempt to start it came to nothing (a lost claim). */
  requeue (id: JobId): void {
    const entry = this.entries.get(id)
    if (entry?.derived.state === JobState.ready && !entry.derived.removed) this.ready.push(entry.facts.spec)
  }

  /** Re-derives some jobs, e.g. after a lease expired or a local run ended. */
  refresh (ids: Iterable<JobId>): void {
    this.recompute(new Set(ids))
  }

  /**
   * Ready jobs in run order. `visit` returns true to take the job (it leaves the ready heap),
   * false to skip it (it stays), or 'stop' to end the walk.
   */
  takeReady (visit: (spec: JobSpec) => boolean | 'stop'): void {
    const skipped: JobSpec[] = []
    for (let spec = this.ready.pop(); spec != null; spec = this.ready.pop()) {
      const lazy = this.untouched.get(spec.id)
      if (lazy != null) {
        // an array's spec stands for its untouched tasks: the first of them is offered
        const verdict = this.offerUntouched(lazy, spec, visit)
        if (verdict === true || verdict === 'stale') continue
        skipped.push(spec)
        if (verdict === 'stop') break
        continue
      }
      const entry = this.entries.get(spec.id)
      if (entry?.derived.state !== JobState.ready || entry.facts.spec !== spec) continue // stale heap entry
      const verdict = visit(spec)
      if (verdict === true) continue
      skipped.push(spec)
      if (verdict === 'stop') break
    }
    for (const spec of skipped) this.ready.push(spec)
  }

  /** The first untouched task of an array, offered to `visit`; a task taken gets an entry of its own. */
  private offerUntouched (lazy: UntouchedTasks, spec: JobSpec, visit: (spec: JobSpec) => boolean | 'stop'): boolean | 'stop' | 'stale' {
    const index = lazy.next()
    if (lazy.array !== spec || lazy.derived.state !== JobState.ready || lazy.derived.removed || index == null) return 'stale'
    const task = lazy.spec(index)
    const verdict = visit(task)
    if (verdict !== true) return verdict
    const touched = new Set<JobId>()
    this.materialize(lazy, index, touched, task)
    this.recompute(touched)
    if (lazy.count > 0) this.ready.push(spec)
    return true
  }

  /** A spec from the ledger: a job, or an array that stands for one task per index. */
  private addSubmitted (spec: JobSpec, touched: Set<JobId>): void {
    if (spec.array == null) {
      this.addSpec(spec, touched)
      return
    }
    if (this.arrays.get(spec.id)?.spec != null) return // specs are written once
    this.sealed.delete(spec.id) // its segment is loaded again
    this.arrays.add(spec)
    this.countSpec(spec.id)
    this.claimKey(spec)
    const lazy = new UntouchedTasks(spec)
    this.untouched.set(spec.id, lazy)
    this.countUntouched(lazy, lazy.derived, +1) // as removed: its first derivation moves it to its real counts
    for (const dep of dependenciesOf(spec)) addTo(this.dependants, dep, spec.id)
    for (const group of groupDependenciesOf(spec)) addTo(this.groupDependants, group, spec.id)
    if (spec.group != null) addTo(this.groupMembers, spec.group, spec.id)
    touched.add(spec.id)
    for (const id of this.dependants.get(spec.id) ?? []) touched.add(id)
    // facts about tasks that came before the array's spec
    for (const [id, facts] of this.orphans) {
      const task = splitTaskId(id)
      if (task?.array !== spec.id || !lazy.has(task.index)) continue
      this.materialize(lazy, task.index, touched)
      for (const fact of facts) this.addJobFact(fact, touched)
      this.orphans.delete(id)
    }
  }

  /** Gives an untouched task an entry of its own (it leaves the array's untouched tasks for good). */
  private materialize (lazy: UntouchedTasks, index: number, touched: Set<JobId>, spec = lazy.spec(index)): void {
    this.countUntouched(lazy, lazy.derived, -1, 1)
    lazy.touch(index)
    this.addSpec(spec, touched)
  }

  /** Untouched tasks in the group, array and segment counts: `weight` of them (all by default). */
  private countUntouched (lazy: UntouchedTasks, derived: Derived, sign: 1 | -1, weight = lazy.count): void {
    const { id, group, array } = lazy.array
    if (weight > 0 && array != null) this.count({ id: taskId(id, array.first), group }, derived, sign, weight)
  }

  /** The idempotency key goes to the first submitted of the specs that carry it. */
  private claimKey (spec: JobSpec): void {
    if (spec.key == null) return
    const holder = this.idempotency.get(spec.key)
    const holderSpec = holder != null ? this.entries.get(holder)?.facts.spec ?? this.arrays.get(holder)?.spec : undefined
    if (holderSpec == null || runsBefore({ ...spec, pri: 0 }, { ...holderSpec, pri: 0 })) this.idempotency.set(spec.key, spec.id)
  }

  private addSpec (spec: JobSpec, touched: Set<JobId>): void {
    if (this.entries.has(spec.id)) return // specs are written once
    const sealed = this.sealed.get(spec.id)
    if (sealed != null) {
      // its segment is loaded again: it is counted anew below
      this.sealed.delete(spec.id)
      this.count(spec, { state: sealed.state, removed: false, lamport: 0, epoch: 0 }, -1)
    }
    const facts: JobFacts = { spec, attempts: new Map(), controls: new Map() }
    // counted in as removed (settled, in no group) so that its first derivation moves it to its real counts
    const placeholder: Derived = { state: JobState.pending, removed: true, lamport: 0, epoch: 0 }
    this.entries.set(spec.id, { facts, derived: placeholder })
    this.count(spec, placeholder, +1)
    for (const dep of dependenciesOf(spec)) addTo(this.dependants, dep, spec.id)
    for (const group of groupDependenciesOf(spec)) addTo(this.groupDependants, group, spec.id)
    if (spec.group != null) addTo(this.groupMembers, spec.group, spec.id)
    this.claimKey(spec)
    touched.add(spec.id)
    for (const fact of this.orphans.get(spec.id) ?? []) this.addJobFact(fact, touched)
    this.orphans.delete(spec.id)
    // jobs that waited for this one while it was unknown here
    for (const id of this.dependants.get(spec.id) ?? []) touched.add(id)
  }

  /** Records an attempt or control; facts that arrive before their job's spec wait for it. */
  private addJobFact (change: FactChange, touched: Set<JobId>): void {
    const id = factSubject(change.key) as JobId
    const task = this.entries.has(id) ? undefined : splitTaskId(id)
    const lazy = task == null ? undefined : this.untouched.get(task.array)
    if (task != null && lazy?.has(task.index) === true) this.materialize(lazy, task.index, touched)
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
    if (entry.derived.state === JobState.ready && !entry.derived.removed) this.ready.push(entry.facts.spec)
  }

  private addPause (fact: PauseFact, group: string, changed: Set<string>): void {
    if (!this.pauses.offer(group, fact)) return
    changed.add(group)
    if (fact.paused && fact.until != null) {
      for (const id of this.groupMembers.get(group) ?? []) this.wakeups.push({ at: fact.until, id })
    }
  }

  private groupProgress (group: string): GroupProgress {
    const counts = this.groupCounts.get(group)
    if (counts == null) return { total: 0, done: 0, ended: 0 }
    // the smallest id, so that every replica names the same failed job
    let failed: JobId | undefined
    for (const id of counts.failed) if (failed == null || id < failed) failed = id
    let inherited: JobId | undefined
    for (const id of counts.inherited) if (inherited == null || this.submittedBefore(id, inherited)) inherited = id
    return { total: counts.total, done: counts.done, ended: counts.done + counts.failed.size + counts.inherited.size, failed, inherited }
  }

  /** Submit order (time, the submitter's sequence, id): the same on every replica, and without cycles. */
  private submittedBefore (a: JobId, b: JobId): boolean {
    const first = this.entries.get(a)?.facts.spec ?? this.sealed.get(a) ?? this.arrays.get(a)?.spec
    const second = this.entries.get(b)?.facts.spec ?? this.sealed.get(b) ?? this.arrays.get(b)?.spec
    if (first == null || second == null) return false
    return runsBefore({ ...first, pri: 0 } as JobSpec, { ...second, pri: 0 } as JobSpec)
  }

  private recompute (ids: Set<JobId>, announce: Set<JobId> = new Set()): void {
    this.ctx.now = this.clock.now()
    const work = [...ids]
    const changed = new Set<JobId>()
    const changedArrays = new Set<JobId>()
    while (work.length > 0) {
      const id = work.pop() as JobId
      const entry = this.entries.get(id)
      const lazy = entry == null ? this.untouched.get(id) : undefined
      if (lazy != null && this.recomputeUntouched(lazy, work)) changedArrays.add(id)
      if (entry == null) continue
      const before = entry.derived
      const after = deriveJob(entry.facts, this.ctx)
      entry.derived = after
      const stateChanged = before.state !== after.state || before.removed !== after.removed || before.inheritedFailure !== after.inheritedFailure
      if (stateChanged) {
        this.count(entry.facts.spec, before, -1)
        this.count(entry.facts.spec, after, +1)
        for (const dep of this.dependants.get(id) ?? []) work.push(dep)
        const { arrayId } = entry.facts.spec
        if (arrayId != null) for (const dep of this.dependants.get(arrayId) ?? []) work.push(dep)
        if (entry.facts.spec.group != null) for (const dep of this.groupDependants.get(entry.facts.spec.group) ?? []) work.push(dep)
        if (after.state === JobState.ready && !after.removed) this.ready.push(entry.facts.spec)
      }
      if (after.wakeAt != null && after.wakeAt !== before.wakeAt) this.wakeups.push({ at: after.wakeAt, id })
      if (stateChanged || before.reason !== after.reason || announce.has(id)) changed.add(id)
    }
    for (const id of changed) {
      const entry = this.entries.get(id) as TableEntry
      for (const listener of this.listeners) listener(id, entry)
    }
    for (const id of changedArrays) for (const listener of this.arrayListeners) listener(id)
  }

  /**
   * Re-derives an array's untouched tasks, all at once. A terminal state (a dependency failed)
   * is never theirs: they all get entries then, so that each task's end is derived and reported.
   * Returns whether their state or its reason changed.
   */
  private recomputeUntouched (lazy: UntouchedTasks, work: JobId[]): boolean {
    const before = lazy.derived
    const after = deriveJob({ spec: lazy.array, attempts: new Map(), controls: new Map() }, this.ctx)
    if (isTerminal(after.state)) {
      const touched = new Set<JobId>()
      for (const index of [...lazy.indices()]) this.materialize(lazy, index, touched)
      work.push(...touched)
      return false
    }
    lazy.derived = after
    if (before.state !== after.state || before.removed !== after.removed) {
      this.countUntouched(lazy, before, -1)
      this.countUntouched(lazy, after, +1)
      const { id, group } = lazy.array
      for (const dep of this.dependants.get(id) ?? []) work.push(dep)
      if (group != null) for (const dep of this.groupDependants.get(group) ?? []) work.push(dep)
      if (after.state === JobState.ready && lazy.count > 0) this.ready.push(lazy.array)
    }
    if (after.wakeAt != null && after.wakeAt !== before.wakeAt) this.wakeups.push({ at: after.wakeAt, id: lazy.array.id })
    return before.state !== after.state || before.removed !== after.removed || before.reason !== after.reason
  }

  /** An array's spec in its segment's count: its tasks count only as unsettled work. */
  private countSpec (id: JobId): void {
    this.segmentCountsOf(id).total++
  }

  private segmentCountsOf (id: JobId): { total: number, unsettled: number } {
    const seg = segmentOf(id) as string
    let counts = this.segmentCounts.get(seg)
    if (counts == null) this.segmentCounts.set(seg, counts = { total: 0, unsettled: 0 })
    return counts
  }

  /** Group and segment counts, kept by state transitions so that checks on them cost O(1). */
  private count (spec: Pick<JobSpec, 'id' | 'group'>, derived: Derived, sign: 1 | -1, weight = 1): void {
    const segCounts = this.segmentCountsOf(spec.id)
    // a removed job counts in its segment as settled, so that the segment can still be sealed;
    // an array's tasks count as the one spec they come from
    segCounts.total += sign * this.arrays.count(spec.id, derived, sign * weight)
    if (!derived.removed && !isTerminal(derived.state)) segCounts.unsettled += sign * weight
    if (derived.removed || spec.group == null) return
    let counts = this.groupCounts.get(spec.group)
    if (counts == null) this.groupCounts.set(spec.group, counts = { total: 0, done: 0, failed: new Set(), inherited: new Set() })
    counts.total += sign * weight
    if (derived.state === JobState.done) counts.done += sign * weight
    if (derived.state === JobState.failed || derived.state === JobState.killed) {
      const failures = derived.inheritedFailure === true ? counts.inherited : counts.failed
      if (sign > 0) failures.add(spec.id)
      else failures.delete(spec.id)
    }
  }
}

/** What stays in memory of a job of a sealed segment. */
export function summarize ({ facts: { spec }, derived }: TableEntry): SealedJob {
  return { id: spec.id, state: derived.state, group: spec.group, key: spec.key, submittedAt: spec.submittedAt, seq: spec.seq }
}
