import { Box, Text } from 'ink'
import { clean } from '../format.js'
import { tone } from './text.js'

/** A question in the status line (cut to fit, `[y/n]` always shown): y does it, any other key does not. */
export function Confirm ({ question }: { question: string }): React.JSX.Element {
  return (
    <Box height={1}>
      <Box flexShrink={1}><Text wrap='truncate' color={tone('yellow')} bold>{clean(question)}</Text></Box>
      <Box flexShrink={0}><Text color={tone('yellow')} bold> [y/n]</Text></Box>
    </Box>
  )
}
