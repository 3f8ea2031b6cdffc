import { decodeJson, encodeJson } from '../../storage/store.js'
import type { KVStore } from '../../storage/store.js'
import type { JobId } from '../../types.js'

/** What the node remembers, on disk, about each run it started: enough to kill it after a crash. */
export interface Intent {
  job: JobId
  epoch: number
  pid?: number
  startTime?: string
}

const PREFIX = 'intent:'
const intentKey = (job: JobId, epoch: number): string => `${PREFIX}${job}:${epoch}`

/**
 * The intent log in the store (`intent:<job>:<epoch>`): written before a start, read after a crash.
 *
 * Its writes are not synced, and need not be: they serve after a crash of the node's processes,
 * which loses nothing the store has written (LevelDB hands each write to the OS at once; only a
 * sync waits for the disk). A crash of the OS loses unsynced writes, but it also ends the jobs, so
 * there is nothing left to kill; an attempt whose record did not reach the disk either is simply
 * not there after the reboot, and its lease lapses on the others after its TTR. Syncing both
 * writes cost two disk flushes per job, one of them between the claim and the spawn.
 */
export class IntentLog {
  constructor (private readonly store: KVStore) {}

  /** Before spawning: a crash of the node from here on leaves a record of the attempt. */
  async begin (job: JobId, epoch: number): Promise<void> {
    await this.write({ job, epoch })
  }

  /** After spawning: the process group and its start time, to kill it after a crash of the node. */
  async started (intent: Intent): Promise<void> {
    await this.write(intent)
  }

  /** The run's end is recorded: its intent is no longer needed. */
  async end (job: JobId, epoch: number): Promise<void> {
    await this.store.batch([{ key: intentKey(job, epoch), value: undefined }])
  }

  /** The intents a previous run of this node left behind. */
  async leftovers (): Promise<Intent[]> {
    const intents: Intent[] = []
    for await (const [, value] of this.store.entries(PREFIX)) intents.push(decodeJson<Intent>(value))
    return intents
  }

  /** Deletes these intents, synced. */
  async clear (intents: Intent[]): Promise<void> {
    await this.store.batch(intents.map(i => ({ key: intentKey(i.job, i.epoch), value: undefined })), { sync: true })
  }

  private async write (intent: Intent): Promise<void> {
    await this.store.batch([{ key: intentKey(intent.job, intent.epoch), value: encodeJson(intent) }])
  }
}
