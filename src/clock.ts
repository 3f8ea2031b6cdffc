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

/**
 * The system clock, with its wall time shifted by `MESHQ_CLOCK_OFFSET_MS` if that is set: how the
 * fault suite plays a host whose clock is wrong. Monotonic time is not shifted.
 */
export function clockFromEnv (env: NodeJS.ProcessEnv = process.env): Clock {
  const offset = Number(env.MESHQ_CLOCK_OFFSET_MS ?? 0)
  if (!Number.isSafeInteger(offset) || offset === 0) return systemClock
  return { now: () => Date.now() + offset, monotonic: systemClock.monotonic }
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
