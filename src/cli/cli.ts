/**
 * `meshq ARGS`: global flags, command dispatch, errors and exit codes.
 */
import { UsageError, asError } from '../errors.js'
import { helpText, parseArgs } from './args.js'
import { loadCommand } from './commands/registry.js'
import { parserFlags, VERSION_FLAG } from './commands/meta.js'
import { write } from '../stream-write.js'
import { HOME_FLAG, makeContext, resolveHome, type Io } from './context.js'

export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const

/** Runs one command line; resolves to the exit code. Never throws. */
export async function run (argv: string[], io: Io = processIo()): Promise<number> {
  let json = argv.slice(0, argv.includes('--') ? argv.indexOf('--') : undefined).includes('--json')
  try {
    let homeFlag: string | undefined
    let i = 0
    for (; i < argv.length && argv[i].startsWith('-') && !isVersionFlag(argv[i]); i++) {
      const arg = argv[i]
      if (arg === '--help' || arg === '-h') {
        await write(io.stdout, await overview())
        return EXIT.ok
      } else if (arg === '--home') {
        homeFlag = argv[++i]
        if (homeFlag === undefined) throw new UsageError('flag --home needs a value (DIR)')
      } else if (arg.startsWith('--home=')) {
        homeFlag = arg.slice('--home='.length)
      } else {
        throw new UsageError(`unknown flag ${arg} (see 'meshq help')`)
      }
    }
    const name = isVersionFlag(argv[i]) ? 'version' : argv[i]
    if (name === undefined) {
      await write(io.stderr, await overview())
      return EXIT.usage
    }
    if (name === 'help') return await help(argv[i + 1], io)
    const command = await loadCommand(name)
    if (command === undefined) throw new UsageError(`unknown command '${name}' (see 'meshq help')`)
    const args = parseArgs(name, argv.slice(i + 1), parserFlags(command), {
      restAfterFirstPositional: command.restAfterFirstPositional
    })
    json = args.bool('json')
    if (args.bool('help')) return await help(name, io)
    return await command.run(makeContext(io, resolveHome(args.string('home') ?? homeFlag, io)), args)
  } catch (err) {
    const error = asError(err)
    const line = json
      ? JSON.stringify({ error: { name: error.name, message: error.message } })
      : `meshq: ${error.message}`
    await write(io.stderr, line + '\n').catch(() => {})
    return exitCode(error)
  }
}

function exitCode (error: Error): number {
  if (error.name === 'UsageError') return EXIT.usage
  if (error.name === 'NodeUnreachableError') return EXIT.unreachable
  return EXIT.failed
}

async function help (topic: string | undefined, io: Io): Promise<number> {
  if (topic === undefined) {
    await write(io.stdout, await overview())
    return EXIT.ok
  }
  const command = await loadCommand(topic)
  if (command === undefined) throw new UsageError(`unknown command '${topic}' (see 'meshq help')`)
  await write(io.stdout, helpText({ ...command, flags: parserFlags(command) }))
  return EXIT.ok
}

async function overview (): Promise<string> {
  const { COMMANDS } = await import('./commands/index.js')
  const width = Math.max(...[...COMMANDS.keys()].map(n => n.length))
  return [
    'Usage: meshq [--home DIR] COMMAND [FLAGS] [ARGS]',
    '',
    'A peer-to-peer job queue for shell commands.',
    '',
    'Commands:',
    ...[...COMMANDS.values()].map(c => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${'help'.padEnd(width)}  Shows the help of a command (or meshq COMMAND --help).`,
    '',
    'Flags:',
    `  --home DIR     ${HOME_FLAG.help}`,
    `  -V, --version  ${VERSION_FLAG.help}`,
    '  -h, --help     show this help',
    '',
    'Exit codes: 0 ok, 1 failed (for wait and sub --wait: a job failed), 2 usage error, 3 node unreachable.',
    ''
  ].join('\n')
}

/** `meshq --version [--json]` is `meshq version [--json]`. */
function isVersionFlag (arg: string | undefined): boolean {
  return arg === `--${VERSION_FLAG.name}` || arg === `-${VERSION_FLAG.short}`
}

function processIo (): Io {
  return {
    // made when a command first reads it: making it costs ~10 ms when it is a file, and most commands never do
    get stdin () { return process.stdin },
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd()
  }
}
