/**
 * What every command runs with: where the node is, the client, and the process's streams.
 */
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { ApiClient } from '../api/client.js'
import { NodeClient } from '../api/node-client.js'
import { SOCKET_NAME } from '../api/protocol.js'
import { write } from '../stream-write.js'
import type { Args, FlagSpec } from './args.js'

/** The process's side of a command: tests may substitute these. */
export interface Io {
  stdin: NodeJS.ReadableStream
  stdout: NodeJS.WritableStream & { isTTY?: boolean }
  stderr: NodeJS.WritableStream
  env: NodeJS.ProcessEnv
  cwd: string
}

export interface Context extends Io {
  /** Absolute path of the node's home. */
  home: string
  socketPath: string
  client: NodeClient
  /** Colour state names (stdout is a TTY and NO_COLOR is unset). */
  color: boolean
}

export interface Command {
  name: string
  /** After `meshq `: `ls [--state S] [--json]`. */
  usage: string
  summary: string
  description?: string
  flags: FlagSpec[]
  /** The first positional starts a command line that is taken verbatim (`meshq sub CMD ARGS`). */
  restAfterFirstPositional?: boolean
  /** Resolves to the exit code. */
  run: (ctx: Context, args: Args) => Promise<number>
}

export const HOME_FLAG: FlagSpec = { name: 'home', arg: 'DIR', help: "the node's home (default $MESHQ_HOME, else ~/.meshq)" }
export const HELP_FLAG: FlagSpec = { name: 'help', short: 'h', help: 'show this help' }
export const JSON_FLAG: FlagSpec = { name: 'json', help: 'print JSON' }

export function resolveHome (flag: string | undefined, io: Io): string {
  const home = flag ?? io.env.MESHQ_HOME
  return home === undefined || home === '' ? join(homedir(), '.meshq') : resolve(io.cwd, home)
}

export function makeContext (io: Io, home: string): Context {
  const socketPath = join(home, SOCKET_NAME)
  return {
    get stdin () { return io.stdin },
    stdout: io.stdout,
    stderr: io.stderr,
    env: io.env,
    cwd: io.cwd,
    home,
    socketPath,
    client: new NodeClient(new ApiClient(socketPath)),
    color: io.stdout.isTTY === true && io.env.NO_COLOR === undefined
  }
}

export async function printJson (ctx: Context, value: unknown): Promise<void> {
  await write(ctx.stdout, JSON.stringify(value, null, 2) + '\n')
}

export async function printLines (ctx: Context, lines: string[]): Promise<void> {
  if (lines.length > 0) await write(ctx.stdout, lines.join('\n') + '\n')
}
