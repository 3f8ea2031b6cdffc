import { JobState, isTerminal } from '../types.js'
import type { Attempt, JobId, JobSpec } from '../types.js'
import type { Clock } from '../clock.js'
import type { DeriveContext, Derived } from '../crdt/derive.js'
import type { FactChange } from '../crdt/facts.js'
import { splitTaskId } from '../array-task.js'
import { ArrayBook } from './array-book.js'
import type { ArrayRecord } from './array-book.js'
import { ArrayTasks } from './array-tasks.js'
import type { Visit } from './array-tasks.js'
import type { Cap } from './claims/group-limits.js'
import { FactIntake } from './fact-intake.js'
import { GroupControls } from './group-controls.js'
import { GroupCounts } from './group-counts.js'
import { JobLinks } from './job-links.js'
import { Rederivation } from './rederivation.js'
import type { JobChangeListener } from './rederivation.js'
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
export type { JobChangeListener } from './rederivation.js'

export interface JobTableInit {
  clock: Clock
  /** Whether an open attempt's lease is still held, as this replica sees it. */
  leaseAlive: (attempt: Attempt) => boolean
}

/**
 * The derived view of every job this replica knows: facts in (FactIntake), states out
 * (Rederivation). A facade over the indexes that make a state change cost O(affected jobs): who
 * waits for whom and who holds each key (JobLinks), group and segment counts, pauses and limits
 * (GroupControls), the run queue and wake-ups (RunQueue), job arrays (ArrayBook, ArrayTasks) and
 * the jobs of sealed segments (SealedJobs).
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
  private readonly ctx: DeriveContext
  private readonly arrays: ArrayTasks
  private readonly sealed: SealedJobs
  private readonly intake: FactIntake
  private readonly derivation: Rederivation

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
    const { entries, links, book, segments, controls, queue, ctx } = this
    const count = this.count.bind(this)
    const addSpec = (spec: JobSpec, touched: Set<JobId>): void => this.intake.addSpec(spec, touched)
    const arrays = this.arrays = new ArrayTasks({ book, links, queue, ctx, count, addSpec, recompute: ids => this.derivation.run(ids) })
    const sealed = this.sealed = new SealedJobs({ entries, arrays, book, links, segments, count })
    this.intake = new FactIntake({ entries, arrays, book, links, sealed, segments, controls, queue, count })
    this.derivation = new Rederivation({ clock: init.clock, entries, arrays, links, queue, ctx, count })
  }

  onChange (listener: JobChangeListener): () => void {
    return this.derivation.onChange(listener)
  }

  /** Called when the untouched tasks of an array change state or wait for another time (see UntouchedTasks). */
  onUntouchedChange (listener: (array: JobId) => void): () => void {
    return this.derivation.onUntouchedChange(listener)
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
    const touched = this.intake.take(changes)
    this.derivation.run(touched, touched)
  }

  /** Re-derives jobs whose wait (delay, backoff, pause) has ended; returns the next wake-up time. */
  wakeDue (): number | undefined {
    this.derivation.run(this.queue.due(this.clock.now()))
    return this.queue.nextWakeup()
  }

  /** Puts a ready job back in the run queue after an attempt to start it came to nothing (a lost claim). */
  requeue (id: JobId): void {
    const entry = this.entries.get(id)
    if (entry?.derived.state === JobState.ready && !entry.derived.removed) this.queue.push(entry.facts.spec)
  }

  /** Re-derives some jobs, e.g. after a lease expired or a local run ended. */
  refresh (ids: Iterable<JobId>): void {
    this.derivation.run(new Set(ids))
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

  /** Submit order (time, the submitter's sequence, id): the same on every replica, and without cycles. */
  private submittedBefore (a: JobId, b: JobId): boolean {
    const first = this.entries.get(a)?.facts.spec ?? this.sealed.get(a) ?? this.book.get(a)?.spec
    const second = this.entries.get(b)?.facts.spec ?? this.sealed.get(b) ?? this.book.get(b)?.spec
    return first != null && second != null && submittedFirst(first, second)
  }

  /** Counts `weight` jobs in a state in or out of their group, segment and array, so that checks on them cost O(1). */
  private count (spec: Pick<JobSpec, 'id' | 'group'>, derived: Derived, sign: 1 | -1, weight = 1): void {
    // an array's tasks count in their segment as the one spec they come from
    const specs = this.book.count(spec.id, derived, sign * weight)
    this.segments.count(spec.id, derived, sign * specs, sign * weight)
    this.groups.count(spec, derived, sign, weight)
  }
}
