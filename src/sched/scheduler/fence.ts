import createDebug from 'debug'
import type { JobId } from '../../types.js'
import type { Run } from './runs.js'

const log = createDebug('meshq:sched')

/** How often running jobs are checked for self-fencing. */
export const FENCE_CHECK_MS = 500
/**
 * The watchdog kills a job whose node has been stalled (or paused) for this fraction of its TTR,
 * before others may rerun it: its last renewal may be TTR/4 old (RENEWALS_PER_TTR), so others can
 * see the lease lapse 3/4 TTR after the node went silent; a quarter of the TTR is left for the kill.
 */
const FENCE_AT_TTR_FRACTION = 0.5

/**
 * How long before its confirmed lease runs out a holder kills the job: a fence check's interval,
 * plus a sixth of the TTR for the kill and for clocks that run at slightly different rates. With
 * renewals every TTR/4, a holder is fenced only if no quorum has acknowledged a renewal for more
 * than half the TTR (17 s at the default TTR): never by an ordinary stall.
 */
export const fenceMarginMs = (ttrMs: number): number => FENCE_CHECK_MS + ttrMs / 6

/**
 * Whether a holder must stop its run: its lease is confirmed by a quorum for `confirmedMs` more
 * (undefined: without limit, e.g. with at most two active members).
 */
export function mustFence (confirmedMs: number | undefined, ttrMs: number): boolean {
  return (confirmedMs ?? Infinity) < fenceMarginMs(ttrMs)
}

/**
 * How long the watchdog lets a stalled node's run go on (src/exec/watchdog.ts); none for a claim
 * won alone: fencing only matters where another node could take the job over.
 */
export function watchdogFenceMs (ttrMs: number, wonAlone: boolean): number | undefined {
  return wonAlone ? undefined : Math.floor(ttrMs * FENCE_AT_TTR_FRACTION)
}

export interface FenceInit {
  runs: () => Iterable<Run>
  /** How long a quorum is known to keep this node's lease of the job (`Claims.confirmedFor`). */
  confirmedFor: (job: JobId) => number | undefined
}

/**
 * Self-fencing: a node stops a job before a quorum without it may take the job over, that is
 * when its lease is about to outlast the renewals a quorum acknowledged (it is cut off, or its
 * link is lossy or one-way). A stall of the node itself is the watchdog's to fence.
 */
export class Fence {
  private timer?: NodeJS.Timeout

  constructor (private readonly init: FenceInit) {}

  start (): void {
    this.timer = setInterval(() => { this.check() }, FENCE_CHECK_MS)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  /** Kills, as lost, each started run whose confirmed lease is about to run out. */
  check (): void {
    for (const run of this.init.runs()) {
      if (run.handle == null) continue
      const confirmed = this.init.confirmedFor(run.spec.id)
      if (!mustFence(confirmed, run.spec.ttrMs)) continue
      log('fencing %s: lease confirmed for %d ms more', run.spec.id, confirmed)
      run.handle.kill('lost')
    }
  }
}
