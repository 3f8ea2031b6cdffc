import createDebug from 'debug'
import { isTerminal } from '../types.js'
import type { JobId, JobView } from '../types.js'
import type { Ledger } from '../crdt/ledger.js'
import { segmentOf } from '../crdt/facts.js'
import { summarize } from '../sched/table.js'
import type { JobTable, TableEntry } from '../sched/table.js'
import type { Startable } from '../lifecycle.js'

const log = createDebug('meshq:sealer')

export interface SealerInit {
  ledger: Ledger
  table: JobTable
  render: (entry: TableEntry) => JobView
  /** An array's record (see arrayView). */
  renderArray: (id: JobId) => JobView | undefined
  /** How long a settled segment waits before it is sealed (late facts often follow a job's end). */
  delayMs?: number
}

/** The sealer: a component, and a way to seal a segment at once. */
export interface Sealer extends Startable {
  /**
   * Seals the segment now if it is settled, without the wait for late facts: for a segment that
   * arrived whole from a peer, whose jobs had all ended there. Never rejects.
   */
  sealNow: (seg: string) => Promise<void>
}

/**
 * Seals segments whose jobs have all finished, so that memory and per-change cost stay bounded
 * however long the history grows. Sealing is a local cache policy, not a fact: every replica
 * decides it alone, and a fact that arrives for a sealed segment loads it again.
 */
export function sealer (init: SealerInit): Sealer {
  const { ledger, table } = init
  const candidates = new Set<string>()
  let timer: NodeJS.Timeout | undefined
  let unsubscribe = (): void => {}

  const sealNow = async (seg: string): Promise<void> => {
    candidates.delete(seg)
    if (ledger.doc(seg) == null || !table.segmentSettled(seg, ledger.capacity)) return
    const entries = [...table.all()].filter(([id]) => segmentOf(id) === seg).map(([, entry]) => entry)
    // an array's record is kept beside its tasks', so that it is still shown, listed and waited for
    const arrays = table.segmentArrays(seg)
    const records = [...entries.map(init.render), ...arrays.flatMap(id => init.renderArray(id) ?? [])]
    const summaries = [...entries.map(summarize), ...arrays.flatMap(id => table.summarizeArray(id) ?? [])]
    try {
      await ledger.seal(seg, records, summaries)
      if (ledger.doc(seg) == null) table.evict(seg)
    } catch (err) {
      log('sealing %s failed: %s', seg, (err as Error).message)
    }
  }

  const sealSettled = async (): Promise<void> => {
    timer = undefined
    for (const seg of [...candidates]) await sealNow(seg)
  }

  const consider = (seg: string): void => {
    candidates.add(seg)
    timer ??= setTimeout(() => { void sealSettled() }, init.delayMs ?? 2000)
  }
  return {
    sealNow,
    start: () => {
      unsubscribe = table.onChange((id, entry) => {
        if (isTerminal(entry.derived.state)) consider(segmentOf(id) as string)
      })
      // segments that settled before this start (loaded, or received while joining) get no change event
      for (const info of ledger.segmentList()) if (!info.sealed) consider(info.id)
    },
    stop: () => {
      unsubscribe()
      clearTimeout(timer)
    }
  }
}
