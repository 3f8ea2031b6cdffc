/**
 * `meshq top --once` (and top without a terminal): one snapshot of the cluster, as text (the
 * dashboard's header and jobs table) or as JSON.
 */
import type { JobView, NodeStatus, PeerView, StatsView } from '../types.js'
import { headerCells, headerLines, JOB_COLUMNS, layout, plain, rowCells } from './format.js'
import { fetchCluster, loadJobs, type TopClient } from './live.js'
import { toRow } from './store.js'

/** Width of the text snapshot when the output is not a terminal. */
export const DEFAULT_WIDTH = 120

export interface Snapshot {
  status: NodeStatus
  stats: StatsView
  peers: PeerView[]
  /** Every job, newest first. */
  jobs: JobView[]
}

export async function snapshot (client: TopClient): Promise<Snapshot> {
  const [cluster, jobs] = await Promise.all([fetchCluster(client), loadJobs(client, job => job)])
  return { ...cluster, jobs }
}

/** The header and every job in `width` columns. */
export function snapshotText (data: Snapshot, width: number, now = Date.now()): string {
  const columns = layout(JOB_COLUMNS, width)
  const lines = [
    ...headerLines({ ...data, history: [] }, width).map(plain),
    '',
    headerCells(columns).join(' '),
    ...data.jobs.map(job => rowCells(columns, toRow(job), now).join(' '))
  ]
  return lines.map(line => line.trimEnd()).join('\n') + '\n'
}
