/** Which jobs a request names or lists, in memory, in sealed segments or as an array's tasks. */
import type { JobId, JobSpec, JobState, JobView } from '../types.js'
import { splitTaskId, taskId } from '../array-task.js'
import type { ListQuery, Selector } from '../api/engine.js'
import { InvalidJobError, JobNotFoundError, UsageError } from '../errors.js'
import type { Ledger } from '../crdt/ledger.js'
import { segmentOf } from '../crdt/facts.js'
import type { JobTable, SealedJob, TableEntry } from '../sched/table.js'
import { arrayTaskIds, arrayView } from '../sched/array-view.js'

/** Whether this node knows a job (in memory or sealed) or an array of that id. */
export function isKnown (table: JobTable, id: string): boolean {
  return table.get(id) != null || table.sealedJob(id) != null || table.array(id) != null
}

/**
 * The jobs a selector names, loading sealed segments back where `wanted` says a sealed job is needed.
 * A sealed job named by id that is not wanted is an error, or left out with `unwanted: 'skip'`.
 */
export async function selectJobs (
  { table, ledger }: { table: JobTable, ledger: Ledger },
  selector: Selector,
  wanted: (job: SealedJob) => boolean,
  unwanted: 'refuse' | 'skip'
): Promise<TableEntry[]> {
  // an array's id stands for its tasks, taken like a group's jobs
  const ids = selector.group != null ? table.groupJobs(selector.group) : selector.ids?.flatMap(id => arrayTaskIds(table, id) ?? [id])
  if (ids == null || ids.length === 0) {
    if (selector.group != null) return []
    throw new UsageError('give job ids or a group')
  }
  for (const id of ids) {
    const sealed = table.sealedJob(id)
    if (sealed != null && wanted(sealed)) await ledger.unseal(segmentOf(id) as string)
  }
  if (selector.group != null) return ids.map(id => table.get(id)).filter(e => e != null)
  const named = new Set(selector.ids)
  return ids.flatMap(id => {
    const entry = table.get(id)
    if (entry != null) return [entry]
    const sealed = table.sealedJob(id)
    if (sealed == null) throw new JobNotFoundError(`no job ${id}`)
    if (unwanted === 'skip' || !named.has(id)) return []
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

/** `meshq ls`: the jobs that match, newest first; each array is one row unless its tasks are asked for. */
export async function listJobs (
  { table, ledger }: { table: JobTable, ledger: Ledger },
  query: ListQuery,
  view: (entry: TableEntry) => JobView,
  readyReason: (spec: JobSpec) => string
): Promise<JobView[]> {
  const matches = (state: JobState, group: string | undefined): boolean =>
    (query.state == null || state === query.state) && (query.group == null || group === query.group)
  const rows: Array<{ id: JobId, submittedAt: number, seq: number, entry?: TableEntry }> = []
  const shown = (id: JobId): boolean => {
    const task = splitTaskId(id)
    return query.array != null ? task?.array === query.array : task == null || query.tasks === true
  }
  const arrays: JobView[] = []
  for (const [id, entry] of table.all()) {
    const { group, submittedAt, seq } = entry.facts.spec
    if (shown(id) && matches(entry.derived.state, group)) rows.push({ id, submittedAt, seq, entry })
  }
  for (const [id, job] of table.sealedJobs()) {
    if (shown(id) && matches(job.state, job.group)) rows.push({ id, submittedAt: job.submittedAt, seq: job.seq })
  }
  for (const lazy of table.untouchedTasks()) {
    const { id: array, group, submittedAt, seq } = lazy.array
    if ((query.array !== array && query.tasks !== true) || !matches(lazy.derived.state, group)) continue
    for (const index of lazy.indices()) {
      const id = taskId(array, index)
      rows.push({ id, submittedAt, seq, entry: table.get(id) })
    }
  }
  if (query.array == null && query.tasks !== true) {
    for (const [id] of table.allArrays()) {
      const array = arrayView(table, id, readyReason)
      if (array != null && matches(array.state, array.group)) arrays.push(array)
    }
  }
  for (const array of arrays) rows.push({ id: array.id, submittedAt: Date.parse(array.submittedAt), seq: 0 })
  rows.sort((a, b) => b.submittedAt - a.submittedAt || b.seq - a.seq || (b.id < a.id ? -1 : 1))
  const page = rows.slice(0, query.limit ?? rows.length)
  const arrayRows = new Map(arrays.map(array => [array.id, array]))
  const sealed = await sealedViews(ledger, page.filter(r => r.entry == null && !arrayRows.has(r.id)).map(r => r.id))
  return page.map(r => r.entry != null ? view(r.entry) : arrayRows.get(r.id) ?? sealed.get(r.id) as JobView)
}
