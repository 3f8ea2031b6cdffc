import { Box, Text } from 'ink'
import { layout, PEER_COLUMNS, type PeerRow } from '../format.js'
import { Table } from './Table.js'

/** The members: state, slots, running jobs, tags, address; the selected one's full id below. */
export function PeersView (
  { rows, selected, width, now }: { rows: readonly PeerRow[], selected: number, width: number, now: number }
): React.JSX.Element {
  const peer = rows[selected]?.peer
  return (
    <Box flexDirection='column'>
      <Text bold wrap='truncate'>Peers {rows.length}</Text>
      <Table columns={layout(PEER_COLUMNS, width - 2)} rows={rows} rowKey={row => row.peer.id} selected={selected} now={now} />
      {peer !== undefined && <Text wrap='truncate'>{`\n${peer.id}  ${peer.addrs.join(' ') || 'no address'}`}</Text>}
      {peer !== undefined && <Text dimColor>d drains the selected node · Tab back to the jobs</Text>}
    </Box>
  )
}
