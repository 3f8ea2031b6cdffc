import { statfs } from 'node:fs/promises'
import createDebug from 'debug'
import { StorageError } from '../errors.js'

const log = createDebug('meshq:store')

/** Free bytes the store needs before it reopens after a failed write: room for LevelDB to turn its log into a table. */
const REOPEN_FREE_BYTES = 16 * 1024 * 1024

/**
 * A write that failed (a full disk) can leave a torn record in LevelDB's log, and LevelDB, replaying
 * that log after a crash, drops the rest of the block the record is in and, since every later record
 * is then out of step with the blocks, everything after it: acknowledged writes included (measured:
 * 20 synced writes after a full-disk failure, all gone after a reopen). So nothing more is written to
 * a log that took a failed write: the next write first reopens the store, which replays the log (its
 * torn record is a write nobody was told succeeded) into a table and starts a new log.
 */
export class TornLogGuard {
  private torn = false
  private reopening?: Promise<void>

  /** `reopen` closes and opens the store at `location` again. */
  constructor (private readonly location: string, private readonly reopen: () => Promise<void>) {}

  writeFailed (): void {
    this.torn = true
  }

  /** Resolves once the store is open (not in the middle of a reopen). */
  async ready (): Promise<void> {
    await this.reopening?.catch(() => {})
  }

  async beforeWrite (): Promise<void> {
    await this.ready()
    if (!this.torn) return
    const free = await freeBytes(this.location)
    if (free < REOPEN_FREE_BYTES) {
      const device = `the device of ${this.location} (${Math.floor(free / 1024)} KiB free)`
      throw new StorageError(`cannot write to the ledger store: no space left on ${device}`)
    }
    this.reopening ??= this.reopenNow().finally(() => { this.reopening = undefined })
    await this.reopening
  }

  private async reopenNow (): Promise<void> {
    log('reopening %s after a failed write', this.location)
    await this.reopen()
    this.torn = false
  }
}

async function freeBytes (location: string): Promise<number> {
  const fs = await statfs(location)
  return fs.bavail * fs.bsize
}
