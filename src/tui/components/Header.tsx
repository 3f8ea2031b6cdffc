import { Box } from 'ink'
import { headerLines, type ClusterView } from '../format.js'
import { Line } from './text.js'

export const HEADER_LINES = 3

/** This node, the mesh, the counts per state and the throughput. */
export function Header ({ info, width }: { info: ClusterView, width: number }): React.JSX.Element {
  return (
    <Box flexDirection='column'>
      {headerLines(info, width).map((segments, i) => <Line key={i} segments={segments} />)}
    </Box>
  )
}
