import { Box, Text } from 'ink'
import type { JobView } from '../../types.js'
import { ATTEMPT_COLUMNS, clean, layout, specLines, STATE_COLORS } from '../format.js'
import type { FullJob } from '../hooks.js'
import type { JobRow } from '../store.js'
import { Table } from './Table.js'
import { tone } from './text.js'

export interface JobDetailProps {
  /** The job's row in the store: its state, kept up to date by the events. */
  row: JobRow
  /** The full job, as the node last answered for it. */
  full: FullJob
  /** The job is no longer in the ledger (shown as last seen). */
  removed: boolean
  log: { lines: string[], error?: Error }
  stream: 'stdout' | 'stderr'
  width: number
  /** Lines available. */
  height: number
  now: number
}

const MAX_ATTEMPTS = 5

/** The spec, why it waits, every attempt (the last few if many) and the tail of its output. */
export function JobDetail ({ row, full, removed, log, stream, width, height, now }: JobDetailProps): React.JSX.Element {
  const { job } = full
  const lines = job === undefined ? 1 : linesOf(job)
  const logLines = log.lines.slice(-Math.max(1, height - 1 - lines - 1)).map(clean)
  const loading = full.error === undefined
  const otherStream = stream === 'stdout' ? 'stderr' : 'stdout'
  const logError = log.error !== undefined ? <Text color={tone('red')}>  {clean(log.error.message)}</Text> : ''
  return (
    <Box flexDirection='column'>
      <Text wrap='truncate'>
        <Text bold>Job {row.id}  </Text>
        <Text color={tone(STATE_COLORS[row.state])} bold>{row.state}</Text>
        <Text>{removed ? '  (removed)' : ''}  {clean(row.label)}</Text>
      </Text>
      {job === undefined
        ? (
          <Text wrap='truncate' color={tone(loading ? undefined : 'red')} dimColor={loading}>
            {full.error === undefined ? 'loading…' : clean(full.error.message)}
          </Text>
          )
        : <Spec job={job} width={width} now={now} />}
      <Text bold wrap='truncate'>Output ({stream}, e for {otherStream}){logError}</Text>
      {logLines.length === 0 ? <Text dimColor>(none yet)</Text> : logLines.map((line, i) => <Text key={i} wrap='truncate'>{line}</Text>)}
    </Box>
  )
}

/** The lines `Spec` takes. */
function linesOf (job: JobView): number {
  const attempts = Math.min(job.attempts.length, MAX_ATTEMPTS)
  return (job.reason === undefined ? 0 : 1) + specLines(job).length + (attempts > 0 ? attempts + 2 : 1)
}

function Spec ({ job, width, now }: { job: JobView, width: number, now: number }): React.JSX.Element {
  const attempts = job.attempts.slice(-MAX_ATTEMPTS)
  const hidden = job.attempts.length - attempts.length
  return (
    <Box flexDirection='column'>
      {job.reason !== undefined && <Text wrap='truncate' color={tone('yellow')}>why: {clean(job.reason)}</Text>}
      {specLines(job).map((line, i) => <Text key={i} wrap='truncate'>{clean(line)}</Text>)}
      {attempts.length === 0
        ? <Text dimColor>no attempts yet</Text>
        : <Box flexDirection='column'>
          <Text bold>Attempts {job.attempts.length}{hidden > 0 ? ` (the last ${attempts.length})` : ''}</Text>
          <Table columns={layout(ATTEMPT_COLUMNS, width - 2)} rows={attempts} rowKey={a => `${a.epoch}:${a.node}`} now={now} />
        </Box>}
    </Box>
  )
}
