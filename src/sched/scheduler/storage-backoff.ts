import type { Clock } from '../../clock.js'

/**
 * After a write to the store failed (a full disk), how long the node claims nothing: it could not
 * start what it won, and each claim it won keeps the job from the others for a TTR.
 */
export const STORAGE_BACKOFF_MS = 5000

/** Whether, and for how long, a failed write keeps this node from claiming. */
export class StorageBackoff {
  /** Monotonic time until which this node claims nothing. */
  private blockedUntil = 0

  constructor (private readonly clock: Clock) {}

  failed (): void {
    this.blockedUntil = this.clock.monotonic() + STORAGE_BACKOFF_MS
  }

  /** Milliseconds left before this node may claim again (≤ 0: it may now). */
  remaining (): number {
    return this.blockedUntil - this.clock.monotonic()
  }
}
