/**
 * Time, injected. Lease and TTR logic measures durations on `monotonic()` (never comparing two
 * hosts' wall clocks); `now()` is wall-clock time for facts people read (submit, start, end times).
 */
export interface Clock {
  /** Wall-clock milliseconds since the epoch. */
  now: () => number
  /** Milliseconds on a clock that never jumps; only differences are meaningful. */
  monotonic: () => number
  /** Calls `fn` once `ms` have passed on this clock; the function returned cancels it. */
  after: (ms: number, fn: () => void) => () => void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  after: (ms, fn) => {
    const timer = setTimeout(fn, ms)
    return () => { clearTimeout(timer) }
  }
}

/** Resolves once `ms` have passed on `clock`. */
export async function sleep (clock: Clock, ms: number): Promise<void> {
  await new Promise<void>(resolve => { clock.after(ms, resolve) })
}

/**
 * The system clock, with its wall time shifted by `MESHQ_CLOCK_OFFSET_MS` if that is set: how the
 * fault suite plays a host whose clock is wrong. Monotonic time is not shifted.
 */
export function clockFromEnv (env: NodeJS.ProcessEnv = process.env): Clock {
  const offset = Number(env.MESHQ_CLOCK_OFFSET_MS ?? 0)
  if (!Number.isSafeInteger(offset) || offset === 0) return systemClock
  return { ...systemClock, now: () => Date.now() + offset }
}

/**
 * A clock that moves only when told to, for tests and simulations of time-based logic. Timers set
 * with `after` fire during `advance`, in time order, each with the clock at its due time.
 */
export class FakeClock implements Clock {
  private wall: number
  private mono = 0
  private timers: Array<{ at: number, seq: number, fn: () => void }> = []
  private seq = 0

  constructor (start = Date.UTC(2026, 0, 1)) {
    this.wall = start
  }

  now = (): number => this.wall
  monotonic = (): number => this.mono

  after = (ms: number, fn: () => void): () => void => {
    const timer = { at: this.mono + Math.max(0, ms), seq: this.seq++, fn }
    this.timers.push(timer)
    return () => { this.timers = this.timers.filter(t => t !== timer) }
  }

  /** How many timers wait to fire. */
  get pending (): number {
    return this.timers.length
  }

  advance (ms: number): void {
    const target = this.mono + ms
    for (;;) {
      const due = this.timers.filter(t => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
      if (due == null) break
      this.timers = this.timers.filter(t => t !== due)
      this.set(due.at)
      due.fn()
    }
    this.set(target)
  }

  private set (mono: number): void {
    this.wall += mono - this.mono
    this.mono = mono
  }
}
