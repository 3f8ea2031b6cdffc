import { Box, Text } from 'ink'
import { jobLabel } from '../../cli/format.js'
import type { JobView } from '../../types.js'
import { ATTEMPT_COLUMNS, clean, layout, specLines, STATE_COLORS } from '../format.js'
import { Table } from './Table.js'
import { tone } from './text.js'

export interface JobDetailProps {
  job: JobView
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
export function JobDetail ({ job, removed, log, stream, width, height, now }: JobDetailProps): React.JSX.Element {
  const spec = specLines(job)
  const attempts = job.attempts.slice(-MAX_ATTEMPTS)
  const hidden = job.attempts.length - attempts.length
  const used = 1 + (job.reason === undefined ? 0 : 1) + spec.length + (attempts.length > 0 ? attempts.length + 2 : 1) + 1
  const logLines = log.lines.slice(-Math.max(1, height - used)).map(clean)
  return (
    <Box flexDirection='column'>
      <Text wrap='truncate'>
        <Text bold>Job {job.id}  </Text>
        <Text color={tone(STATE_COLORS[job.state])} bold>{job.state}</Text>
        <Text>{removed ? '  (removed)' : ''}  {clean(jobLabel(job))}</Text>
      </Text>
      {job.reason !== undefined && <Text wrap='truncate' color={tone('yellow')}>why: {clean(job.reason)}</Text>}
      {spec.map((line, i) => <Text key={i} wrap='truncate'>{clean(line)}</Text>)}
      {attempts.length === 0
        ? <Text dimColor>no attempts yet</Text>
        : <Box flexDirection='column'>
          <Text bold>Attempts {job.attempts.length}{hidden > 0 ? ` (the last ${attempts.length})` : ''}</Text>
          <Table columns={layout(ATTEMPT_COLUMNS, width - 2)} rows={attempts} rowKey={a => `${a.epoch}:${a.node}`} now={now} />
        </Box>}
      <Text bold wrap='truncate'>Output ({stream}, e for {stream === 'stdout' ? 'stderr' : 'stdout'}){log.error !== undefined ? <Text color={tone('red')}>  {clean(log.error.message)}</Text> : ''}</Text>
      {logLines.length === 0 ? <Text dimColor>(none yet)</Text> : logLines.map((line, i) => <Text key={i} wrap='truncate'>{line}</Text>)}
    </Box>
  )
}
