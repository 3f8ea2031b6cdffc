import type { FactChange } from './facts.js'

interface QueuedWrite {
  fact: FactChange
  sync: boolean
  resolve: () => void
  reject: (err: Error) => void
}

/**
 * This replica's writes, gathered over one turn of the event loop and committed together (see
 * `Ledger.put`): a burst of submits costs one Automerge change per document and one store batch.
 * The batch is synced if any write in it asked for it; every writer gets the commit's error.
 */
export class WriteBatcher {
  private queue: QueuedWrite[] = []
  private flushScheduled = false
  private flushing = false

  constructor (private readonly commit: (facts: FactChange[], sync: boolean) => Promise<void>) {}

  /** Resolves once the batch holding the facts is committed. */
  async put (facts: FactChange[], sync: boolean): Promise<void> {
    const written = facts.map(async fact => await new Promise<void>((resolve, reject) => {
      this.queue.push({ fact, sync, resolve, reject })
    }))
    this.scheduleFlush()
    await Promise.all(written)
  }

  /** Whether a write to the document waits to be committed. */
  waitsFor (docId: string): boolean {
    return this.queue.some(w => w.fact.doc === docId)
  }

  /** Resolves when every queued write is committed. */
  async drain (): Promise<void> {
    while (this.queue.length > 0 || this.flushing) {
      await new Promise<void>(resolve => setImmediate(resolve))
    }
  }

  private scheduleFlush (): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => { void this.flush() })
  }

  private async flush (): Promise<void> {
    this.flushScheduled = false
    if (this.flushing || this.queue.length === 0) return
    this.flushing = true
    const batch = this.queue
    this.queue = []
    try {
      await this.commit(batch.map(w => w.fact), batch.some(w => w.sync))
      for (const w of batch) w.resolve()
    } catch (err) {
      for (const w of batch) w.reject(err as Error)
    } finally {
      this.flushing = false
      if (this.queue.length > 0) this.scheduleFlush()
    }
  }
}
