import createDebug from 'debug'
import type { Clock } from '../clock.js'
import type { Ledger } from '../crdt/ledger.js'
import { META_DOC, MetaMap, dropKey, factSubject, segmentOf } from '../crdt/facts.js'
import type { DropFact, FactChange } from '../crdt/facts.js'
import type { OutputFiles } from '../exec/output-files.js'
import type { JobTable } from '../sched/table.js'
import { isTerminal } from '../types.js'
import type { GcResult, JobView, PeerIdString } from '../types.js'

const log = createDebug('meshq:gc')
/** How often a node started with `--retain` looks for history to drop. */
const RETAIN_CHECK_MS = 60 * 60_000

export interface RetentionInit {
  self: PeerIdString
  clock: Clock
  ledger: Ledger
  table: JobTable
  outputs: OutputFiles
  /** `meshq node --retain`: drop history older than this by itself, every hour. */
  retainMs?: number
}

/**
 * History retention (`meshq gc`). The unit is a sealed segment: one submitter's 1000 jobs, all
 * finished. A node that collects writes a drop fact per segment; every replica that receives it
 * deletes the segment's document, records and job output, and refuses the segment from peers.
 */
export class Retention {
  private readonly init: RetentionInit
  private applying: Promise<void> = Promise.resolve()
  private timer?: NodeJS.Timeout

  constructor (init: RetentionInit) {
    this.init = init
  }

  start (): void {
    const { retainMs } = this.init
    if (retainMs == null) return
    const collect = (): void => {
      this.collect(retainMs, false).then(
        result => { if (result.segments.length > 0) log('retention dropped %d segments (%d jobs)', result.segments.length, result.jobs) },
        err => { log('retention failed: %s', (err as Error).message) })
    }
    collect()
    this.timer = setInterval(collect, RETAIN_CHECK_MS)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  /**
   * Drops, on every replica, the sealed segments whose jobs all finished more than `olderThanMs`
   * ago and that no unfinished job waits for (as a dependency or through its group).
   */
  async collect (olderThanMs: number, dryRun: boolean): Promise<GcResult> {
    const { clock, ledger, table, self } = this.init
    const now = clock.now()
    const before = now - olderThanMs
    const segments: string[] = []
    let jobs = 0
    for (const info of ledger.segmentList()) {
      if (!info.sealed || info.dropped === true) continue
      const records = await ledger.sealedRecords<JobView>(info.id)
      if (records.length === 0 || !records.every(job => finishedBefore(job, before) && !table.awaited(job))) continue
      segments.push(info.id)
      jobs += records.length
    }
    if (!dryRun && segments.length > 0) {
      const fact: DropFact = { by: self, at: now, before }
      await ledger.put(segments.map(seg => ({ doc: META_DOC, map: MetaMap.drops, key: dropKey(seg, self), value: fact })), { sync: true })
    }
    return { segments, jobs, dryRun }
  }

  /** Takes in ledger facts: drop facts, from this node or any other, are applied in order. */
  ingest (changes: FactChange[]): void {
    const segments = new Set(changes.filter(c => c.map === MetaMap.drops).map(c => factSubject(c.key)))
    if (segments.size === 0) return
    this.applying = this.applying.then(async () => { await this.apply(segments) }, () => {})
  }

  /** Resolves once every drop taken in so far is applied. */
  async settled (): Promise<void> {
    await this.applying
  }

  private async apply (segments: Set<string>): Promise<void> {
    const { ledger, table, outputs } = this.init
    try {
      for (const seg of segments) await ledger.drop(seg)
      table.drop(segments)
      await outputs.remove(job => segments.has(segmentOf(job) as string)) // a name that is no job id has no segment
      log('dropped %d segments', segments.size)
    } catch (err) {
      log('dropping %s failed: %s', [...segments].join(','), (err as Error).message)
    }
  }
}

function finishedBefore (job: JobView, before: number): boolean {
  return isTerminal(job.state) && Date.parse(job.endedAt ?? job.submittedAt) < before
}
