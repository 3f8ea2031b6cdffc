import { Text } from 'ink'
import { tone } from './text.js'

/** A question in the status line: y does it, any other key does not. */
export function Confirm ({ question }: { question: string }): React.JSX.Element {
  return <Text wrap='truncate' color={tone('yellow')} bold>{question} [y/n]</Text>
}
