/**
 * Gives V8's spare heap back to the system once the node has been quiet for a while.
 *
 * Why: V8's memory reducer shrinks the heap only after it has seen a low allocation rate, and it
 * samples that rate at collections. A node that falls quiet (after its start, or after a burst of
 * submits) makes no collection that would tell it so: an idle node kept a heap of 91 MiB for 30 MiB
 * of live objects, at 139 MiB of RSS, for as long as it ran (`--trace-memory-reducer`: "high alloc"
 * every 8 s). One full, memory-reducing collection does what the reducer would have done (RSS 103 MiB).
 *
 * It runs once per quiet spell: after `quietMs` without a ledger change, with no job running here,
 * and only when the heap holds at least `spareBytes` more than its live objects. So it never pauses
 * a node that works, and a node that stays quiet is neither collected again nor woken by a timer.
 */
import v8 from 'node:v8'
import createDebug from 'debug'
import type { Clock } from '../clock.js'
import type { Startable } from '../lifecycle.js'
import { exposeGc, type Collect } from '../v8-gc.js'

const log = createDebug('meshq:memory')
const MiB = 2 ** 20

/** What the collector reads of the heap: its committed size and what is in use. */
export interface HeapSize {
  total: number
  used: number
}

export interface IdleMemoryInit {
  clock: Clock
  /** Calls the listener on every change to the ledger; returns what unsubscribes it. */
  onChange: (listener: () => void) => () => void
  /** Whether a job runs on this node now. */
  busy: () => boolean
  quietMs?: number
  spareBytes?: number
  heap?: () => HeapSize
  collect?: Collect
}

const v8Heap = (): HeapSize => {
  const stats = v8.getHeapStatistics()
  return { total: stats.total_heap_size, used: stats.used_heap_size }
}

export class IdleMemory implements Startable {
  readonly #clock: Clock
  readonly #quietMs: number
  readonly #spareBytes: number
  readonly #heap: () => HeapSize
  #collect?: Collect
  #lastChange = 0
  #cancel?: () => void
  #unsubscribe?: () => void
  #collected = false

  constructor (private readonly init: IdleMemoryInit) {
    this.#clock = init.clock
    this.#quietMs = init.quietMs ?? 10_000
    this.#spareBytes = init.spareBytes ?? 16 * MiB
    this.#heap = init.heap ?? v8Heap
    this.#collect = init.collect
  }

  start (): void {
    this.#unsubscribe = this.init.onChange(() => { this.#touch() })
    this.#touch()
  }

  stop (): void {
    this.#unsubscribe?.()
    this.#cancel?.()
    this.#cancel = undefined
  }

  /** Activity: the quiet spell starts again. One timer at a time, however many changes come. */
  #touch (): void {
    this.#lastChange = this.#clock.monotonic()
    this.#collected = false
    if (this.#cancel == null) this.#arm(this.#quietMs)
  }

  #arm (ms: number): void {
    this.#cancel = this.#clock.after(ms, () => {
      this.#cancel = undefined
      this.#check()
    })
  }

  #check (): void {
    const quietFor = this.#clock.monotonic() - this.#lastChange
    if (quietFor < this.#quietMs) return this.#arm(this.#quietMs - quietFor)
    // a running job's end is a ledger change, which starts a quiet spell again
    if (this.init.busy() || this.#collected) return
    this.#collected = true
    const before = this.#heap()
    const heap = `heap ${Math.round(before.total / MiB)} MiB (${Math.round(before.used / MiB)} in use)`
    if (before.total - before.used < this.#spareBytes) {
      log('quiet for %d s: %s, little to give back', Math.round(quietFor / 1000), heap)
      return
    }
    this.#collect ??= exposeGc()
    this.#collect({ type: 'major', flavor: 'last-resort' })
    log('quiet for %d s: %s → %d MiB', Math.round(quietFor / 1000), heap, Math.round(this.#heap().total / MiB))
  }
}
