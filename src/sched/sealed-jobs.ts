import type { JobId, JobSpec, JobState } from '../types.js'
import type { Derived } from '../crdt/derive.js'
import { segmentOf } from '../crdt/facts.js'
import type { ArrayBook } from './array-book.js'
import type { ArrayTasks } from './array-tasks.js'
import type { JobLinks } from './job-links.js'
import type { SegmentCounts } from './segment-counts.js'
import type { TableEntry } from './table-entry.js'

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

/** What stays in memory of a job of a sealed segment. */
export function summarize ({ facts: { spec }, derived }: TableEntry): SealedJob {
  return { id: spec.id, state: derived.state, group: spec.group, key: spec.key, submittedAt: spec.submittedAt, seq: spec.seq }
}

/** A sealed job as the counts see it. */
const derivedOf = (job: SealedJob): Derived => ({ state: job.state, removed: false, lamport: 0, epoch: 0 })

export interface SealedJobsInit {
  /** The job table's entries, which sealing empties of a segment's jobs. */
  entries: Map<JobId, TableEntry>
  arrays: ArrayTasks
  book: ArrayBook
  links: JobLinks
  segments: SegmentCounts
  /** Counts a job in (`sign` 1) or out (-1) of the group, segment and array counts. */
  count: (spec: Pick<JobSpec, 'id' | 'group'>, derived: Derived, sign: 1 | -1) => void
}

/** Jobs of sealed segments: their final state, enough for dependants, groups and listings. */
export class SealedJobs {
  private readonly jobs = new Map<JobId, SealedJob>()

  constructor (private readonly init: SealedJobsInit) {}

  get (id: JobId): SealedJob | undefined {
    return this.jobs.get(id)
  }

  entries (): IterableIterator<[JobId, SealedJob]> {
    return this.jobs.entries()
  }

  /** Takes a job out when its segment is loaded again: it is counted anew under `spec`. */
  unseal (spec: Pick<JobSpec, 'id' | 'group'>): void {
    const job = this.jobs.get(spec.id)
    if (job == null) return
    this.jobs.delete(spec.id)
    if (job.array !== true) this.init.count(spec, derivedOf(job), -1)
  }

  /** What stays in memory of a sealed array (see SealedJob.array). */
  summarizeArray (id: JobId): SealedJob | undefined {
    const lazy = this.init.arrays.of(id)
    const state = this.init.book.state(id)
    if (lazy == null || state == null) return undefined
    const { group, key, submittedAt, seq } = lazy.array
    return { id, state, group, key, submittedAt, seq, array: true }
  }

  /** Drops a settled segment's jobs from memory; returns the summaries that stay. */
  evict (seg: string): SealedJob[] {
    const { entries, arrays } = this.init
    const summaries: SealedJob[] = []
    for (const id of arrays.inSegment(seg)) {
      const summary = this.summarizeArray(id)
      if (summary != null) this.jobs.set(id, summary)
      arrays.forget(id)
    }
    for (const [id, entry] of entries) {
      if (segmentOf(id) !== seg) continue
      entries.delete(id)
      if (entry.derived.removed) continue
      const summary = summarize(entry)
      this.jobs.set(id, summary)
      summaries.push(summary)
    }
    return summaries
  }

  /** Forgets segments dropped by `meshq gc`: their jobs leave every index. */
  drop (segments: ReadonlySet<string>): void {
    const { links, count } = this.init
    for (const seg of segments) this.evict(seg)
    for (const [id, job] of this.jobs) {
      if (!segments.has(segmentOf(id) as string)) continue
      this.jobs.delete(id)
      count(job, derivedOf(job), -1)
      if (job.group != null) links.removeMember(job.group, id)
      if (job.key != null) links.releaseKey(job.key, id)
    }
    for (const seg of segments) this.init.segments.forget(seg)
  }

  /** Takes in the summaries of a segment sealed before this start. */
  add (summaries: SealedJob[]): void {
    const { links, count } = this.init
    for (const job of summaries) {
      this.jobs.set(job.id, job)
      if (job.array === true) continue // its tasks are counted
      if (job.group != null) links.addMember(job.group, job.id)
      if (job.key != null) links.keepKey(job.key, job.id)
      count(job, derivedOf(job), +1)
    }
  }
}
