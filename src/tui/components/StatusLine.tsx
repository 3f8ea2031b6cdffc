import { Box, Text } from 'ink'
import { clean } from '../format.js'
import type { Notice } from '../hooks.js'
import { tone } from './text.js'

export interface StatusLineProps {
  /** A filter being typed. */
  prompt?: { label: string, value: string }
  /** The connection's trouble, if any. */
  problem?: string
  /** The outcome of the last action. */
  notice?: Notice
}

/** The bottom line: a prompt, else the connection's trouble, else the last notice; and the keys to remember. */
export function StatusLine ({ prompt, problem, notice }: StatusLineProps): React.JSX.Element {
  return (
    <Box height={1}>
      <Box flexGrow={1} flexShrink={1}>
        {prompt !== undefined
          ? <Text wrap='truncate'>{prompt.label}: {prompt.value}<Text inverse> </Text></Text>
          : problem !== undefined
            ? <Text wrap='truncate' color={tone('red')} bold>{problem}</Text>
            : <Text wrap='truncate' color={tone(notice?.error === true ? 'red' : undefined)}>{clean(notice?.text ?? '')}</Text>}
      </Box>
      <Box flexShrink={0}><Text dimColor>  ? help  q quit</Text></Box>
    </Box>
  )
}
