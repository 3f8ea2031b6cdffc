import type { JobId, JobSpec } from '../types.js'
import { Heap } from './heap.js'

/** The fields that place a job in run order. */
export type Ordered = Pick<JobSpec, 'id' | 'pri' | 'submittedAt' | 'seq' | 'arrayIndex'>

/** Run order: higher priority first, then submit order (time, then the submitter's sequence). */
export function runsBefore (a: Ordered, b: Ordered): boolean {
  if (a.pri !== b.pri) return a.pri > b.pri
  if (a.submittedAt !== b.submittedAt) return a.submittedAt < b.submittedAt
  if (a.seq !== b.seq) return a.seq < b.seq
  if (a.arrayIndex !== b.arrayIndex) return (a.arrayIndex ?? -1) < (b.arrayIndex ?? -1)
  return a.id < b.id
}

/** Submit order (time, the submitter's sequence, id): run order without priorities, the same on every replica. */
export function submittedFirst (a: Omit<Ordered, 'pri'>, b: Omit<Ordered, 'pri'>): boolean {
  return runsBefore({ ...a, pri: 0 }, { ...b, pri: 0 })
}

/**
 * Ready jobs in run order, and the times at which waiting jobs (a delay, a backoff, a timed pause)
 * are due for another look. Entries may be stale: the job table checks each one it takes.
 */
export class RunQueue {
  private readonly ready = new Heap<JobSpec>(runsBefore)
  private readonly wakeups = new Heap<{ at: number, id: JobId }>((a, b) => a.at < b.at)

  push (spec: JobSpec): void {
    this.ready.push(spec)
  }

  pop (): JobSpec | undefined {
    return this.ready.pop()
  }

  wakeAt (at: number, id: JobId): void {
    this.wakeups.push({ at, id })
  }

  /** Takes off the jobs due by `now`. */
  due (now: number): Set<JobId> {
    const due = new Set<JobId>()
    while ((this.wakeups.peek()?.at ?? Infinity) <= now) due.add((this.wakeups.pop() as { id: JobId }).id)
    return due
  }

  nextWakeup (): number | undefined {
    return this.wakeups.peek()?.at
  }
}
