import type { Clock } from '../clock.js'

/**
 * A clock of the time this node was awake: it advances by at most two ticks per tick, so a stall
 * of the event loop (CPU starvation, GC, SIGSTOP) does not count as time in which others were
 * silent. Messages that arrived during the stall are read before silence is judged again.
 */
export class AwakeClock {
  private elapsed = 0
  private last: number
  private timer?: NodeJS.Timeout

  constructor (private readonly clock: Clock, private readonly tickMs: number) {
    this.last = clock.monotonic()
  }

  start (): void {
    this.last = this.clock.monotonic()
    this.timer = setInterval(() => { this.tick() }, this.tickMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  now (): number {
    return this.elapsed + Math.min(this.clock.monotonic() - this.last, this.tickMs)
  }

  private tick (): void {
    const at = this.clock.monotonic()
    this.elapsed += Math.min(at - this.last, 2 * this.tickMs)
    this.last = at
  }
}
