/**
 * Script files, as sbatch takes them: `meshq sub run.sh` and `meshq sub < run.sh`. The script's
 * text is stored in the job, so it runs on any node, and `#MESHQ --flag value` lines at its top
 * give submit options as `#SBATCH` lines do (flags on the command line win).
 */
import { basename, resolve } from 'node:path'
import { UsageError } from '../errors.js'
import { parseArgs } from './args.js'
import type { ClientRequest, ClientSide } from '../jobs/submit-options.js'
import { SUBMIT_FLAGS, submitOptionsFromArgs } from './submit-options.js'

/** Linux takes at most 128 KiB in one argument, and the script travels as one (see RUNNER). */
export const MAX_SCRIPT_BYTES = 100 * 1024
/** A file with a NUL byte in its first bytes is a program, not a script. */
const SNIFF_BYTES = 8192

export interface Script {
  /** The file's name (`stdin` for a script read from stdin): `$0` of the runner, and the job's default name. */
  name: string
  text: string
}

/**
 * Runs the script whose text is `$1`: writes it to a private temporary file, opens it, deletes
 * it and executes the open file, so that nothing is left behind and the script's own exit status
 * (or signal) is the job's. The kernel honours a `#!` line; without one, sh runs it.
 */
const RUNNER = 'f=$(mktemp) && printf %s "$1" > "$f" && chmod 700 "$f" && exec 3< "$f" && rm -f "$f" && exec /dev/fd/3'

export const scriptCommand = (script: Script): string[] => ['sh', '-c', RUNNER, script.name, script.text]

/**
 * The sole argument of `meshq sub` as a script, if it names a readable text file; undefined for
 * anything else (a program on the PATH, a binary, a file this user cannot read), which runs as a command.
 */
export async function readScriptFile (arg: string, cwd: string): Promise<Script | undefined> {
  // loaded here: node:fs/promises (with readline) costs `meshq sub -- CMD`, which reads no file, ~4 ms
  const { open, stat } = await import('node:fs/promises')
  const path = resolve(cwd, arg)
  // a FIFO or a device is never a script, and opening one could block
  if ((await stat(path).catch(() => undefined))?.isFile() !== true) return undefined
  let file
  try {
    file = await open(path)
  } catch {
    return undefined
  }
  try {
    const { size } = await file.stat()
    const head = Buffer.alloc(Math.min(SNIFF_BYTES, size))
    await file.read(head, 0, head.length, 0)
    if (head.includes(0)) return undefined
    if (size > MAX_SCRIPT_BYTES) throw tooLarge(arg)
    return { name: basename(arg), text: (await file.readFile()).toString('utf8') }
  } catch (err) {
    if (err instanceof UsageError) throw err
    return undefined
  } finally {
    await file.close()
  }
}

/** A script given on stdin; undefined if stdin was empty. */
export function scriptFromInput (bytes: Buffer): Script | undefined {
  if (bytes.length === 0) return undefined
  if (bytes.includes(0)) throw new UsageError('stdin holds a NUL byte: not a script (give a command, or --batch for JSON jobs)')
  if (bytes.length > MAX_SCRIPT_BYTES) throw tooLarge('the script on stdin')
  return { name: 'stdin', text: bytes.toString('utf8') }
}

function tooLarge (what: string): UsageError {
  const command = `meshq sub -- ${what === 'the script on stdin' ? 'PATH' : what}`
  const limit = `${MAX_SCRIPT_BYTES / 1024} KiB`
  return new UsageError(`${what} is over ${limit}, the most a job can carry as a script: run it as a command (${command})`)
}

/** `#MESHQ` lines: the comment block at the top (after `#!`), until the first line that is not a comment or blank. */
export function directives (text: string): Array<{ line: number, words: string[] }> {
  const found: Array<{ line: number, words: string[] }> = []
  const lines = text.split('\n')
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim()
    if (line === '' || (i === 0 && line.startsWith('#!'))) continue
    if (!line.startsWith('#')) break
    const match = /^#MESHQ(?:\s+(.*))?$/.exec(line)
    if (match != null) found.push({ line: i + 1, words: splitWords(match[1] ?? '') })
  }
  return found
}

/** Splits a `#MESHQ` line into words as sh would: quotes, backslashes, and `#` starting a comment. */
export function splitWords (text: string): string[] {
  const words: string[] = []
  let word: string | undefined
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (/\s/.test(c)) {
      if (word !== undefined) words.push(word)
      word = undefined
    } else if (c === '#' && word === undefined) {
      break
    } else if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1)
      if (end < 0) throw new UsageError(`unterminated ${c} quote`)
      word = (word ?? '') + text.slice(i + 1, end)
      i = end
    } else if (c === '\\' && i + 1 < text.length) {
      word = (word ?? '') + text[++i]
    } else {
      word = (word ?? '') + c
    }
  }
  if (word !== undefined) words.push(word)
  return words
}

/**
 * The options of a script's `#MESHQ` lines under the command line's: a command-line flag replaces
 * the script's, except `--env`, whose variables are merged (the command line's win). An unknown
 * or bad flag is a usage error naming the line.
 */
export function withScriptOptions (script: Script, flags: Partial<ClientRequest>, client: ClientSide): Partial<ClientRequest> {
  const lines = directives(script.text)
  for (const { line, words } of lines) {
    try {
      const args = parseArgs('sub', words, SUBMIT_FLAGS)
      if (args.positionals.length > 0) throw new UsageError(`unexpected '${args.positionals[0]}': a #MESHQ line holds flags only`)
      submitOptionsFromArgs(args, client)
    } catch (err) {
      throw new UsageError(`${script.name} line ${line}: ${(err as Error).message}`)
    }
  }
  const fromScript = submitOptionsFromArgs(parseArgs('sub', lines.flatMap(l => l.words), SUBMIT_FLAGS), client)
  const env = fromScript.env !== undefined || flags.env !== undefined ? { ...fromScript.env, ...flags.env } : undefined
  return { name: script.name, ...fromScript, ...flags, env }
}
