/**
 * Bounds on V8's heap for the dashboard, whose memory was otherwise mostly V8's slack: with 100,000
 * jobs, top held ~45 MiB of live objects in a heap of up to 250 MiB. Both bounds work at run time
 * (V8's own limits, `--max-semi-space-size` and `--max-old-space-size`, are only read at start):
 *
 * - The young generation: V8 grows it, by doubling, up to 128 MiB while top loads every job (they
 *   all survive their first collections), and keeps it. Its growth factor is read at each growth:
 *   after every collection, growth is allowed below `youngMax` and stopped at it.
 * - The old generation: V8 lets it grow to several times what is live before collecting it. A
 *   young generation of 8 MiB is smaller than what Ink allocates for one frame (~7 MiB on 160×48),
 *   so under a stream of changes frames promote ~9 MiB/s of garbage to the old generation. It is
 *   collected (`gc`, exposed for this process) once it has grown by `oldSlack` since the last full
 *   collection: under 200 changes a second, a pause of ~40 ms about every 0.7 s, outside frames.
 *   With a young generation of 16 MiB there is ten times less to collect, for 8 MiB more memory.
 */
import { constants, PerformanceObserver, type PerformanceEntry, type PerformanceObserverEntryList } from 'node:perf_hooks'
import v8 from 'node:v8'
import { exposeGc } from '../v8-gc.js'

const MiB = 2 ** 20

export interface HeapBounds {
  youngMax: number
  oldSlack: number
}

export const HEAP_BOUNDS: HeapBounds = { youngMax: 8 * MiB, oldSlack: 6 * MiB }

function spaces (): { young: number, old: number } {
  const stats = v8.getHeapSpaceStatistics()
  const space = (name: string): v8.HeapSpaceInfo | undefined => stats.find(s => s.space_name === name)
  return { young: space('new_space')?.space_size ?? 0, old: space('old_space')?.space_used_size ?? 0 }
}

function isFullGc (entry: PerformanceEntry): boolean {
  return (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR
}

/** Bounds the heap from now on; returns what ends the bounds. */
export function boundHeap ({ youngMax, oldSlack }: HeapBounds = HEAP_BOUNDS): () => void {
  const collect = exposeGc()
  v8.setFlagsFromString('--semi-space-growth-factor=1')
  let growing = false
  let oldAfterFullGc = spaces().old
  let collecting: NodeJS.Immediate | undefined
  const check = (list: PerformanceObserverEntryList): void => {
    const { young, old } = spaces()
    if (list.getEntries().some(isFullGc)) oldAfterFullGc = old
    const grow = young < youngMax
    if (grow !== growing) {
      v8.setFlagsFromString(`--semi-space-growth-factor=${grow ? 2 : 1}`)
      growing = grow
    }
    // in a task of its own, not within the observer (nor a frame)
    if (old > oldAfterFullGc + oldSlack) collecting ??= setImmediate(() => { collecting = undefined; collect() })
  }
  const observer = new PerformanceObserver(check)
  observer.observe({ entryTypes: ['gc'] })
  return () => {
    observer.disconnect()
    clearImmediate(collecting)
    v8.setFlagsFromString('--semi-space-growth-factor=2')
  }
}
