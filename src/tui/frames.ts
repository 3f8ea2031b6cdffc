/**
 * Opt-in frame timing, for the benchmark: with `MESHQ_TOP_FRAME_LOG=path`, every frame drawn appends
 * one line to `path`: the milliseconds of work that produced it (React rendering and committing the
 * update, then Ink laying the frame out and writing it). Unset, nothing is created or measured.
 */
import { createWriteStream, type WriteStream } from 'node:fs'
import { performance } from 'node:perf_hooks'

export class FrameLog {
  /** When React began rendering an update not drawn yet. */
  private renderStart: number | undefined
  /** React work of updates committed but not drawn yet (Ink draws at most `maxFps` times a second). */
  private committedMs = 0

  private constructor (private readonly out: WriteStream) {}

  static fromEnv (env = process.env): FrameLog | undefined {
    const path = env.MESHQ_TOP_FRAME_LOG
    return path === undefined || path === '' ? undefined : new FrameLog(createWriteStream(path, { flags: 'a' }))
  }

  /** The root component renders. */
  rendering (): void {
    this.renderStart ??= performance.now()
  }

  /** React committed the update (Ink may draw it now, from the commit, or later). */
  committed (): void {
    if (this.renderStart === undefined) return
    this.committedMs += performance.now() - this.renderStart
    this.renderStart = undefined
  }

  /** Ink drew a frame; `inkMs` is its own layout and output time. */
  drawn (inkMs: number): void {
    // Drawn from the commit itself: the time since rendering began covers React and Ink.
    const ms = this.committedMs + (this.renderStart === undefined ? inkMs : performance.now() - this.renderStart)
    this.renderStart = undefined
    this.committedMs = 0
    this.out.write(`${ms.toFixed(2)}\n`)
  }

  close (): void {
    this.out.end()
  }
}
