/** Which jobs a request names, in memory or in sealed segments. */
import type { JobId, JobView } from '../types.js'
import type { Selector } from '../api/engine.js'
import { InvalidJobError, JobNotFoundError, UsageError } from '../errors.js'
import type { Ledger } from '../crdt/ledger.js'
import { segmentOf } from '../crdt/facts.js'
import type { JobTable, SealedJob, TableEntry } from '../sched/table.js'

/**
 * The jobs a selector names, loading sealed segments back where `wanted` says a sealed job is needed.
 * A sealed job named by id that is not wanted is an error, or left out with `unwanted: 'skip'`.
 */
export async function selectJobs (
  { table, ledger }: { table: JobTable, ledger: Ledger }, selector: Selector, wanted: (job: SealedJob) => boolean, unwanted: 'refuse' | 'skip'
): Promise<TableEntry[]> {
  const ids = selector.group != null ? table.groupJobs(selector.group) : selector.ids
  if (ids == null || ids.length === 0) {
    if (selector.group != null) return []
    throw new UsageError('give job ids or a group')
  }
  for (const id of ids) {
    const sealed = table.sealedJob(id)
    if (sealed != null && wanted(sealed)) await ledger.unseal(segmentOf(id) as string)
  }
  if (selector.group != null) return ids.map(id => table.get(id)).filter(e => e != null)
  return ids.flatMap(id => {
    const entry = table.get(id)
    if (entry != null) return [entry]
    const sealed = table.sealedJob(id)
    if (sealed == null) throw new JobNotFoundError(`no job ${id}`)
    if (unwanted === 'skip') return []
    throw new InvalidJobError(`job ${id} is ${sealed.state}`)
  })
}

/** Final records of jobs in sealed segments, read from the store. */
export async function sealedViews (ledger: Ledger, ids: JobId[]): Promise<Map<JobId, JobView>> {
  const out = new Map<JobId, JobView>()
  for (const seg of new Set(ids.map(id => segmentOf(id) as string))) {
    for (const view of await ledger.sealedRecords<JobView>(seg)) out.set(view.id, view)
  }
  return out
}
