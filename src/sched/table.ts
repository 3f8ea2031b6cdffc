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
  /** Jobs of sealed segments: their final state, enough for dependants, groups and listings. */
  private readonly sealed = new Map<JobId, SealedJob>()
  private readonly segmentCounts = new Map<string, { total: number, unsettled: number }>()
  /** Attempts and controls received before their job's spec (patches carry no order between maps). */
  private readonly orphans = new Map<JobId, Set<FactChange>>()
  private readonly ready = new Heap<JobSpec>(runsBefore)
  private readonly wakeups = new Heap<{ at: number, id: JobId }>((a, b) => a.at < b.at)
  private readonly listeners = new Set<JobChangeListener>()
  private readonly ctx: DeriveContext

  constructor (init: JobTableInit) {
    this.clock = init.clock
    this.ctx = {
      now: 0,
      jobState: id => {
        const entry = this.entries.get(id)
        if (entry == null) return this.sealed.get(id)?.state
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

  get (id: string): TableEntry | undefined {
    const entry = this.entries.get(id as JobId)
    return entry?.derived.removed === true ? undefined : entry
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

  /** Drops a settled segment's jobs from memory; returns the summaries that stay. */
  evict (seg: string): SealedJob[] {
    const summaries: SealedJob[] = []
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
      return entry != null && !entry.derived.removed && !isTerminal(entry.derived.state)
    }
    return [...this.dependants.get(job.id) ?? []].some(unsettled) ||
      (job.group != null && [...this.groupDependants.get(job.group) ?? []].some(unsettled))
  }

  /** Takes in the summaries of a segment sealed before this start. */
  addSealed (summaries: SealedJob[]): void {
    for (const job of summaries) {
      this.sealed.set(job.id, job)
      if (job.group != null) addTo(this.groupMembers, job.group, job.id)
      if (job.key != null && !this.idempotency.has(job.key)) this.idempotency.set(job.key, job.id)
      this.count(job, { state: job.state, removed: false, lamport: 0, epoch: 0 }, +1)
    }
  }

  byKey (key: string): JobId | undefined {
    return this.idempotency.get(key)
  }

  groupJobs (group: string): JobId[] {
    return [...this.groupMembers.get(group) ?? []]
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
      if (change.map === SegmentMap.jobs) this.addSpec(change.value as JobSpec, touched)
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
      const entry = this.entries.get(spec.id)
      if (entry?.derived.state !== JobState.ready || entry.facts.spec !== spec) continue // stale heap entry
      const verdict = visit(spec)
      if (verdict === true) continue
      skipped.push(spec)
      if (verdict === 'stop') break
    }
    for (const spec of skipped) this.ready.push(spec)
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
    if (spec.key != null) {
      const holder = this.idempotency.get(spec.key)
      const holderSpec = holder != null ? this.entries.get(holder)?.facts.spec : undefined
      if (holderSpec == null || runsBefore({ ...spec, pri: 0 }, { ...holderSpec, pri: 0 })) this.idempotency.set(spec.key, spec.id)
    }
    touched.add(spec.id)
    for (const fact of this.orphans.get(spec.id) ?? []) this.addJobFact(fact, touched)
    this.orphans.delete(spec.id)
    // jobs that waited for this one while it was unknown here
    for (const id of this.dependants.get(spec.id) ?? []) touched.add(id)
  }

  /** Records an attempt or control; facts that arrive before their job's spec wait for it. */
  private addJobFact (change: FactChange, touched: Set<JobId>): void {
    const id = factSubject(change.key) as JobId
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
    const first = this.entries.get(a)?.facts.spec ?? this.sealed.get(a)
    const second = this.entries.get(b)?.facts.spec ?? this.sealed.get(b)
    if (first == null || second == null) return false
    return runsBefore({ ...first, pri: 0 } as JobSpec, { ...second, pri: 0 } as JobSpec)
  }

  private recompute (ids: Set<JobId>, announce: Set<JobId> = new Set()): void {
    this.ctx.now = this.clock.now()
    const work = [...ids]
    const changed = new Set<JobId>()
    while (work.length > 0) {
      const id = work.pop() as JobId
      const entry = this.entries.get(id)
      if (entry == null) continue
      const before = entry.derived
      const after = deriveJob(entry.facts, this.ctx)
      entry.derived = after
      const stateChanged = before.state !== after.state || before.removed !== after.removed || before.inheritedFailure !== after.inheritedFailure
      if (stateChanged) {
        this.count(entry.facts.spec, before, -1)
        this.count(entry.facts.spec, after, +1)
        for (const dep of this.dependants.get(id) ?? []) work.push(dep)
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
  }

  /** Group and segment counts, kept by state transitions so that checks on them cost O(1). */
  private count (spec: Pick<JobSpec, 'id' | 'group'>, derived: Derived, sign: 1 | -1): void {
    const seg = segmentOf(spec.id) as string
    const segCounts = this.segmentCounts.get(seg) ?? { total: 0, unsettled: 0 }
    this.segmentCounts.set(seg, segCounts)
    // a removed job counts in its segment as settled, so that the segment can still be sealed
    segCounts.total += sign
    if (!derived.removed && !isTerminal(derived.state)) segCounts.unsettled += sign
    if (derived.removed || spec.group == null) return
    let counts = this.groupCounts.get(spec.group)
    if (counts == null) this.groupCounts.set(spec.group, counts = { total: 0, done: 0, failed: new Set(), inherited: new Set() })
    counts.total += sign
    if (derived.state === JobState.done) counts.done += sign
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
