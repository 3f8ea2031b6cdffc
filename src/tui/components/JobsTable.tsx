import { Box, Text } from 'ink'
import { useMemo } from 'react'
import { describeFilter, JOB_COLUMNS, layout } from '../format.js'
import { isEmpty, type JobFilter, type JobRow } from '../store.js'
import { Table } from './Table.js'

export interface JobsTableProps {
  /** Every job that passes the filter, newest first. */
  jobs: readonly JobRow[]
  /** How many jobs there are in all. */
  total: number
  filter: JobFilter
  selected: number
  /** First row shown. */
  top: number
  /** Rows of jobs shown. */
  rows: number
  width: number
  now: number
  /** The jobs have been loaded once (until then the table is empty and the status line says why). */
  loaded: boolean
  /** Every job is loaded, not only the newest. */
  complete: boolean
}

/** The title line, the header and the visible rows only. */
export function JobsTable ({ jobs, total, filter, selected, top, rows, width, now, loaded, complete }: JobsTableProps): React.JSX.Element {
  const filtered = !isEmpty(filter)
  const columns = useMemo(() => layout(JOB_COLUMNS, width - 2), [width])
  return (
    <Box flexDirection='column'>
      <Text wrap='truncate'>
        <Text bold>Jobs {filtered ? `${jobs.length} of ${total}` : total}</Text>
        <Text>{complete ? '' : ' newest (loading every job…)'}</Text>
        <Text>{filtered ? `  ${describeFilter(filter)}  (Esc clears)` : ''}</Text>
      </Text>
      <Table columns={columns} rows={jobs.slice(top, top + rows)} rowKey={job => job.id} selected={selected - top} now={now} />
      {loaded && jobs.length === 0 && <Text dimColor>{filtered ? '  no job matches the filter' : '  no jobs yet: s submits one'}</Text>}
    </Box>
  )
}
