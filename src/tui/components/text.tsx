/** Text helpers every component uses: colours that follow NO_COLOR, lines of segments. */
import { Text } from 'ink'
import type { Segment } from '../format.js'

/** `color`, unless NO_COLOR is set (chalk follows FORCE_COLOR and the terminal, but not NO_COLOR). */
export function tone (color: string | undefined): string | undefined {
  return process.env.NO_COLOR === undefined ? color : undefined
}

/** One line, cut at the width of the screen. */
export function Line ({ segments }: { segments: readonly Segment[] }): React.JSX.Element {
  return (
    <Text wrap='truncate'>
      {segments.map((s, i) => <Text key={i} color={tone(s.color)} bold={s.bold}>{s.text}</Text>)}
    </Text>
  )
}
