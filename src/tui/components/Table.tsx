import { Box, Text } from 'ink'
import { headerCells, rowCells, type Column } from '../format.js'
import { tone } from './text.js'

export interface TableProps<T> {
  /** Laid out to the width (see `layout`). */
  columns: ReadonlyArray<Column<T>>
  rows: readonly T[]
  rowKey: (row: T) => string
  /** Index in `rows` of the selected row (shown inverted, with a `>`). */
  selected?: number
  now: number
}

/** A header and one line per row; only the rows given are rendered. */
export function Table<T> ({ columns, rows, rowKey, selected, now }: TableProps<T>): React.JSX.Element {
  return (
    <Box flexDirection='column'>
      <Text bold wrap='truncate'>{'  ' + headerCells(columns).join(' ')}</Text>
      {rows.map((row, i) => (
        <Text key={rowKey(row)} wrap='truncate' inverse={i === selected}>
          {i === selected ? '> ' : '  '}
          {rowCells(columns, row, now).map((cell, c) => (
            <Text key={c} color={tone(columns[c].color?.(row))}>{c === 0 ? cell : ' ' + cell}</Text>
          ))}
        </Text>
      ))}
    </Box>
  )
}
