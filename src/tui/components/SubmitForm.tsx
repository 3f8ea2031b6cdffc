import { Box, Text } from 'ink'
import { FORM_FIELDS, type FormState } from '../form.js'
import { tone } from './text.js'

const LABEL_WIDTH = Math.max(...FORM_FIELDS.map(f => f.label.length))

/** The fields of a new job; the focused one has a cursor and its hint. */
export function SubmitForm ({ form }: { form: FormState }): React.JSX.Element {
  return (
    <Box flexDirection='column'>
      <Text bold>Submit a job  <Text dimColor>(Tab next field · Enter submit · Esc cancel)</Text></Text>
      {FORM_FIELDS.map((field, i) => (
        <Text key={field.label} wrap='truncate'>
          {i === form.focus ? '> ' : '  '}
          <Text bold={i === form.focus}>{field.label.padEnd(LABEL_WIDTH)}</Text>
          {'  '}{form.values[i]}
          {i === form.focus && <Text inverse> </Text>}
          {i === form.focus && <Text dimColor>{'  ' + field.hint}</Text>}
        </Text>
      ))}
      {form.error !== undefined && <Text color={tone('red')} wrap='truncate'>{form.error}</Text>}
      <Text dimColor>runs in {process.cwd()}</Text>
    </Box>
  )
}
