import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { UsageError } from '../../errors.js'
import { parseMemory } from '../../size.js'
import { splitList } from '../../values.js'
import type { Command, Io } from '../context.js'
import { runNode } from '../lazy.js'
import type { NodeOptions } from '../../node/options.js'

const HOST_PORT = /^(\[[^\]]+\]|[^\s:[\]]+):(\d{1,5})$/
export const JOIN_TOKEN_ENV = 'MESHQ_JOIN_TOKEN'

/**
 * The join token: from `--join TOKEN`, `--join @FILE`, `--join -` (the first line of stdin) or,
 * without --join, from $MESHQ_JOIN_TOKEN. The last three keep it out of the process's command line.
 */
export async function joinToken (flag: string | undefined, io: Pick<Io, 'stdin' | 'env' | 'cwd'>): Promise<string | undefined> {
  if (flag === undefined) {
    const token = io.env[JOIN_TOKEN_ENV]?.trim()
    return token === '' ? undefined : token
  }
  if (flag === '-') return given(await firstLine(io.stdin), '--join -: no token on stdin')
  if (flag.startsWith('@')) return await tokenFile(flag, io.cwd)
  return flag
}

function given (token: string, whenEmpty: string): string {
  if (token === '') throw new UsageError(whenEmpty)
  return token
}

/** The token in the file `--join @FILE` names, relative to `cwd`. */
async function tokenFile (flag: string, cwd: string): Promise<string> {
  const path = resolve(cwd, flag.slice(1))
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new UsageError(`--join ${flag}: cannot read the token: ${(err as Error).message}`)
  }
  return given(text.trim(), `--join ${flag}: ${path} is empty`)
}

async function firstLine (stdin: NodeJS.ReadableStream): Promise<string> {
  // not a terminal interface: it would put a TTY in raw mode, and Ctrl-C would no longer stop the node
  const lines = createInterface({ input: stdin, terminal: false })
  for await (const line of lines) return line.trim()
  return ''
}

function memoryFlag (value: string | undefined): number | undefined {
  return value === undefined ? undefined : parseMemory(value, '--mem')
}

export const node: Command = {
  name: 'node',
  usage: 'node [--listen MULTIADDR]... [--slots N] [--tags a,b] [--join TOKEN|@FILE|-] [--api HOST:PORT] [--kill-grace DUR] ' +
    '[--no-cgroups] [--claim-window DUR] [--retain DUR] [--mem SIZE]',
  summary: 'Runs a node in the foreground.',
  description: [
    'The first start without --join creates a new cluster in the home; with --join the node joins the',
    "cluster of the token. Prints its peer id and addresses. SIGINT drains (running jobs finish, no new",
    'ones are claimed) and exits 0; SIGTERM stops now, killing running jobs and releasing them to others.',
    '',
    'The token holds the cluster key. Given as --join TOKEN it is in the command line, which every local',
    'user can read while the node runs (ps, /proc): prefer --join @FILE, --join - (one line on stdin) or',
    `${JOIN_TOKEN_ENV}, which is used when --join is absent.`,
    '',
    'Each job runs in a cgroup of its own where the node may make one (cgroup v2 with cgroup.kill: root,',
    'or a delegated cgroup): kills, timeouts, fencing and the death of the node then kill its whole',
    'process tree, also what left its process group (setsid). Elsewhere, or with --no-cgroups, only the',
    "job's process group is killed; the node says so on stderr when it starts."
  ].join('\n'),
  flags: [
    { name: 'listen', arg: 'MULTIADDR', repeat: true, help: 'address to listen on (repeatable; default /ip4/0.0.0.0/tcp/7746)' },
    { name: 'slots', arg: 'N', help: 'how many job slots this node offers (default: the number of CPUs)' },
    { name: 'tags', arg: 'a,b', repeat: true, help: "this node's tags, for jobs submitted with --tag" },
    {
      name: 'join',
      arg: 'TOKEN',
      help: `join the cluster of this token (from meshq invite); @FILE reads it from a file, - from stdin; default $${JOIN_TOKEN_ENV}`
    },
    { name: 'api', arg: 'HOST:PORT', help: 'also serve the control API on TCP (bearer token in HOME/api-token)' },
    { name: 'kill-grace', arg: 'DUR', help: 'time between SIGTERM and SIGKILL when a job is killed' },
    { name: 'no-cgroups', help: "contain jobs by process group only: what leaves a job's group outlives it" },
    { name: 'claim-window', arg: 'DUR', help: 'how long each lower-ranked node waits before it also claims a ready job (default 100ms)' },
    { name: 'retain', arg: 'DUR', help: 'drop finished jobs older than this from the ledger everywhere, checked hourly (see meshq gc)' },
    { name: 'mem', arg: 'SIZE', help: 'memory this node offers to jobs submitted with --mem, e.g. 8G (default: what the OS has available)' }
  ],
  async run (ctx, args) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument '${args.positionals[0]}' (see 'meshq node --help')`)
    const api = args.string('api')
    if (api !== undefined) {
      const match = HOST_PORT.exec(api)
      if (match === null || Number(match[2]) > 65535) throw new UsageError(`bad --api: '${api}' (expected HOST:PORT)`)
    }
    const listen = args.list('listen')
    const options: NodeOptions = {
      home: ctx.home,
      listen: listen.length > 0 ? listen : ['/ip4/0.0.0.0/tcp/7746'],
      slots: args.int('slots', 0),
      tags: splitList(args.list('tags')),
      join: await joinToken(args.string('join'), ctx),
      api,
      killGraceMs: args.duration('kill-grace'),
      cgroups: args.bool('no-cgroups') ? false : undefined,
      claimWindowMs: args.duration('claim-window'),
      retainMs: args.duration('retain'),
      memBytes: memoryFlag(args.string('mem'))
    }
    for (const key of Object.keys(options) as Array<keyof NodeOptions>) {
      if (options[key] === undefined) delete options[key]
    }
    const code = await runNode(options)
    return typeof code === 'number' ? code : 0
  }
}
