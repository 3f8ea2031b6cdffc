import { Box, Text } from 'ink'
import { memo } from 'react'
import { headerCells, rowCells, type Column } from '../format.js'
import { tone } from './text.js'

export interface TableProps<T> {
  /** Laid out to the width (see `layout`); the same array from one render to the next lets rows be kept. */
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
      {rows.map((row, i) => <Row key={rowKey(row)} columns={columns} row={row} selected={i === selected} now={now} />)}
    </Box>
  )
}

interface RowProps<T> {
  columns: ReadonlyArray<Column<T>>
  row: T
  selected: boolean
  now: number
}

/**
 * One line, rendered again only when its props change: a frame then allocates little for the rows
 * that stayed the same, and less of it lives on into V8's old generation (see heap.ts).
 */
const Row = memo(function Row<T> ({ columns, row, selected, now }: RowProps<T>): React.JSX.Element {
  return (
    <Text wrap='truncate' inverse={selected}>
      {selected ? '> ' : '  '}
      {rowCells(columns, row, now).map((cell, c) => (
        <Text key={c} color={tone(columns[c].color?.(row))}>{c === 0 ? cell : ' ' + cell}</Text>
      ))}
    </Text>
  )
}) as <T>(props: RowProps<T>) => React.JSX.Element
