/**
 * The submit form's model and text editing, pure: the fields, how typed keys change a value, and
 * the `POST /v1/jobs` request the values make.
 */
import type { Key } from 'ink'
import type { SubmitRequest } from '../types.js'

export const FORM_FIELDS = [
  { label: 'command', hint: 'split like a shell; quotes and \\ work' },
  { label: 'group', hint: 'optional' },
  { label: 'priority', hint: 'integer, higher runs first (default 0)' },
  { label: 'after', hint: 'job ids, comma separated' },
  { label: 'tag', hint: 'run only on nodes with these tags, comma separated' },
  { label: 'retries', hint: 'integer ≥ 0 (default 0)' }
] as const

export interface FormState {
  values: string[]
  /** The field being edited. */
  focus: number
  /** Why the last Enter did not submit. */
  error?: string
}

export function newForm (): FormState {
  return { values: FORM_FIELDS.map(() => ''), focus: 0 }
}

/** A value after one key press: typed text appended, Backspace deletes, Ctrl-U clears; other keys change nothing. */
export function edit (value: string, input: string, key: Key): string {
  if (key.backspace || key.delete) return value.slice(0, -1)
  if (key.ctrl && input === 'u') return ''
  if (key.ctrl || key.meta || key.escape || key.return || key.tab) return value
  // eslint-disable-next-line no-control-regex -- control characters are what it removes
  return value + input.replace(/[\x00-\x1f\x7f]/g, '')
}

/** Splits a command line like a shell would (quotes, backslashes; no expansions). Throws on an open quote. */
export function splitCommand (line: string): string[] {
  const words: string[] = []
  let word: string | undefined
  let quote: '"' | "'" | undefined
  for (let i = 0; i < line.length; i++) {
    const c = line[i]
    if (quote !== undefined && c === quote) {
      quote = undefined
    } else if (quote === undefined && (c === "'" || c === '"')) {
      quote = c
      word ??= ''
    } else if (c === '\\' && quote !== "'" && i + 1 < line.length) {
      word = (word ?? '') + line[++i]
    } else if (quote === undefined && /\s/.test(c)) {
      if (word !== undefined) words.push(word)
      word = undefined
    } else {
      word = (word ?? '') + c
    }
  }
  if (quote !== undefined) throw new Error(`the command has an unclosed ${quote}`)
  if (word !== undefined) words.push(word)
  return words
}

function list (value: string): string[] | undefined {
  const items = value.split(',').map(s => s.trim()).filter(s => s !== '')
  return items.length === 0 ? undefined : items
}

function integer (value: string, what: string, min: number): number | undefined {
  if (value.trim() === '') return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) throw new Error(`${what} must be an integer${min === 0 ? ' ≥ 0' : ''}`)
  return n
}

/** The request the form's values make (without `cwd`). Throws an Error saying what is wrong. */
export function formRequest (values: readonly string[]): SubmitRequest {
  const [command, group, priority, after, tag, retries] = values
  const cmd = splitCommand(command)
  if (cmd.length === 0) throw new Error('type a command')
  const request: SubmitRequest = {
    cmd,
    group: group.trim() || undefined,
    pri: integer(priority, 'priority', -Infinity),
    after: list(after),
    tag: list(tag),
    retries: integer(retries, 'retries', 0)
  }
  return Object.fromEntries(Object.entries(request).filter(([, v]) => v !== undefined)) as unknown as SubmitRequest
}
