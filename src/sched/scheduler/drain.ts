/** Drain: once begun, the node claims nothing new; those waiting are told when the last run ends. */
export class Drain {
  private draining = false
  private waiters: Array<() => void> = []

  get active (): boolean { return this.draining }

  begin (): void {
    this.draining = true
  }

  /** Begins draining; resolves once `runsLeft` reports none (at once if none is running). */
  async untilIdle (runsLeft: number): Promise<void> {
    this.begin()
    if (runsLeft === 0) return
    await new Promise<void>(resolve => this.waiters.push(resolve))
  }

  /** A run ended; `runsLeft` are still running. */
  runEnded (runsLeft: number): void {
    if (this.draining && runsLeft === 0) for (const resolve of this.waiters.splice(0)) resolve()
  }
}
