import type { JobId } from '../types.js'

/** A new job's id and its place in its submitter's order. */
export interface JobSlot {
  id: JobId
  n: number
  seq: number
}

/** The segment this replica adds its submitted jobs to, and how many it holds. */
interface OpenSegment {
  id: string
  count: number
  index: number
}

/**
 * Ids for the jobs this replica submits: `<segment>-<n>` in its open segment, with `seq` = the
 * segment's index × capacity + n (its submit order), opening a new segment when one is full.
 * The ids are reserved in memory only: they become facts when their specs are written.
 */
export class SegmentAllocator {
  private current?: OpenSegment
  /** Index of the next segment this replica opens. */
  private nextIndex = 0
  private allocating: Promise<void> = Promise.resolve()

  /** `openSegment` creates and records a segment of this replica at that index, and returns its id. */
  constructor (private readonly capacity: number, private readonly openSegment: (index: number) => Promise<string>) {}

  /** Notes a segment this replica opened before (found in the store), so that the next one follows it. */
  noteOwn (index: number): void {
    this.nextIndex = Math.max(this.nextIndex, index + 1)
  }

  /** Adds jobs to an unsealed segment of this replica, loaded from the store, while it has room. */
  resume (id: string, count: number, index: number): void {
    if (count < this.capacity) this.current = { id, count, index }
  }

  /** The segment takes no more jobs (it was sealed or dropped). */
  close (id: string): void {
    if (this.current?.id === id) this.current = undefined
  }

  async allocate (count: number): Promise<JobSlot[]> {
    // serialised: two submits must not both open a new segment
    const previous = this.allocating
    let release = (): void => {}
    this.allocating = new Promise(resolve => { release = resolve })
    await previous
    try {
      return await this.take(count)
    } finally {
      release()
    }
  }

  private async take (count: number): Promise<JobSlot[]> {
    const slots: JobSlot[] = []
    while (slots.length < count) {
      const seg = this.current != null && this.current.count < this.capacity ? this.current : await this.open()
      const n = ++seg.count
      slots.push({ id: `${seg.id}-${n}` as JobId, n, seq: seg.index * this.capacity + n })
    }
    return slots
  }

  private async open (): Promise<OpenSegment> {
    const index = this.nextIndex++
    const id = await this.openSegment(index)
    this.current = { id, count: 0, index }
    return this.current
  }
}
