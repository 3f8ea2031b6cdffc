/**
 * Time, injected. Lease and TTR logic measures durations on `monotonic()` (never comparing two
 * hosts' wall clocks); `now()` is wall-clock time for facts people read (submit, start, end times).
 */
export interface Clock {
  /** Wall-clock milliseconds since the epoch. */
  now: () => number
  /** Milliseconds on a clock that never jumps; only differences are meaningful. */
  monotonic: () => number
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now()
}

/** A clock that moves only when told to, for tests of time-based logic. */
export class FakeClock implements Clock {
  private wall: number
  private mono = 0

  constructor (start = Date.UTC(2026, 0, 1)) {
    this.wall = start
  }

  now = (): number => this.wall
  monotonic = (): number => this.mono

  advance (ms: number): void {
    this.wall += ms
    this.mono += ms
  }
}
