/**
 * Where a node keeps its jobs' output, and the one place that knows the layout:
 * `<home>/output/<job>/<epoch>.stdout`, `.stderr` and `.hooks` (the hooks' output). The executor
 * writes there (output.ts), `meshq logs` reads and follows from here, and history retention
 * removes jobs' directories through here.
 */
import { open, readdir, rm } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { InvalidJobError } from '../errors.js'

export type OutputStream = 'stdout' | 'stderr'

export interface OutputPaths {
  stdout: string
  stderr: string
}

/** How often a followed output file is checked for more. */
const FOLLOW_POLL_MS = 100
const READ_CHUNK = 64 * 1024

export interface ReadOptions {
  /** Keep reading as the file grows, until `ended` says the attempt is over. */
  follow: boolean
  ended: () => Promise<boolean>
  signal: AbortSignal
}

export class OutputFiles {
  private readonly dir: string

  constructor (home: string) {
    this.dir = join(home, 'output')
  }

  paths (job: string, epoch: number): OutputPaths {
    const base = this.base(job, epoch)
    return { stdout: `${base}.stdout`, stderr: `${base}.stderr` }
  }

  hookLog (job: string, epoch: number): string {
    return `${this.base(job, epoch)}.hooks`
  }

  /**
   * An attempt's output of one stream, in chunks; nothing if there is none here. Following, it is
   * read to its end once more after `ended` turned true, so that output written before the end is
   * never missed.
   */
  async * read (job: string, epoch: number, stream: OutputStream, options: ReadOptions): AsyncIterable<Uint8Array> {
    const file = await open(`${this.base(job, epoch)}.${stream}`, 'r').catch(() => undefined)
    if (file == null) return
    try {
      const buffer = Buffer.alloc(READ_CHUNK)
      let position = 0
      while (!options.signal.aborted) {
        // checked before reading, so that output written before the end is never missed
        const over = !options.follow || await options.ended()
        const { bytesRead } = await file.read(buffer, 0, buffer.length, position)
        if (bytesRead > 0) {
          position += bytesRead
          yield Uint8Array.prototype.slice.call(buffer, 0, bytesRead)
          continue
        }
        if (over) return
        await new Promise(resolve => setTimeout(resolve, FOLLOW_POLL_MS))
      }
    } finally {
      await file.close()
    }
  }

  /** Removes the output of every job `which` picks. */
  async remove (which: (job: string) => boolean): Promise<void> {
    const jobs = await readdir(this.dir).catch(() => [] as string[])
    await Promise.all(jobs.filter(which).map(async job => { await rm(join(this.dir, job), { recursive: true, force: true }) }))
  }

  /** A job id names a directory: one that could lead out of the output directory is refused. */
  private base (job: string, epoch: number): string {
    if (basename(job) !== job || ['', '.', '..'].includes(job)) throw new InvalidJobError(`unsafe job id: ${job}`)
    return join(this.dir, job, String(epoch))
  }
}
