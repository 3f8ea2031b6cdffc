import { Box, Text } from 'ink'
import { fit } from '../format.js'
import { HELP } from '../keys.js'

const KEY_WIDTH = 11

/** Every key, in as many columns of 40 characters as fit. */
export function HelpView ({ width }: { width: number }): React.JSX.Element {
  const columns = Math.max(1, Math.floor(width / 40))
  const height = Math.ceil(HELP.length / columns)
  const columnWidth = Math.floor(width / columns)
  const lines = Array.from({ length: height }, (_, row) => Array.from({ length: columns }, (_, col) => HELP[col * height + row])
    .filter(entry => entry !== undefined)
    .map(([keys, what]) => fit(keys, KEY_WIDTH) + fit(what, columnWidth - KEY_WIDTH - 1) + ' ')
    .join('')
    .trimEnd())
  return (
    <Box flexDirection='column'>
      <Text bold>Keys  (? or Esc closes)</Text>
      {lines.map((line, i) => <Text key={i} wrap='truncate'>{line}</Text>)}
    </Box>
  )
}
