import { UsageError } from '../../errors.js'
import { formatDuration } from '../../duration.js'
import { formatMemory } from '../../size.js'
import { JOB_STATES } from '../../types.js'
import { parseInteger } from '../../values.js'
import type { Args } from '../args.js'
import { JSON_FLAG, printJson, printLines, type Command } from '../context.js'
import { paintState, table } from '../format.js'
import { loadRunTop } from '../lazy.js'

function onlyGroup (args: Args): string {
  if (args.positionals.length !== 1) throw new UsageError(`give one group (see 'meshq ${args.command} --help')`)
  return args.positionals[0]
}

function noArguments (args: Args): void {
  if (args.positionals.length > 0) {
    throw new UsageError(`unexpected argument '${args.positionals[0]}' (see 'meshq ${args.command} --help')`)
  }
}

export const pause: Command = {
  name: 'pause',
  usage: 'pause G [--for DUR]',
  summary: 'No job of group G starts while the group is paused (running jobs go on).',
  flags: [{ name: 'for', arg: 'DUR', help: 'resume by itself after this long' }],
  async run (ctx, args) {
    const group = onlyGroup(args)
    const forMs = args.duration('for')
    await ctx.client.pause(group, forMs)
    await printLines(ctx, [`paused ${group}${forMs === undefined ? '' : ` for ${formatDuration(forMs)}`}`])
    return 0
  }
}

export const resume: Command = {
  name: 'resume',
  usage: 'resume G',
  summary: 'Lets the jobs of a paused group start again.',
  flags: [],
  async run (ctx, args) {
    const group = onlyGroup(args)
    await ctx.client.resume(group)
    await printLines(ctx, [`resumed ${group}`])
    return 0
  }
}

export const limit: Command = {
  name: 'limit',
  usage: 'limit [G N | G none] [--json]',
  summary: 'Caps how many jobs of group G run at once across the whole mesh; without arguments, lists the caps.',
  description: 'N is a whole number >= 1; "none" lifts the cap. Jobs already running go on.\n' +
    'A cap of 1 makes the group\'s jobs mutually exclusive across the mesh (see docs/guarantees.md).',
  flags: [JSON_FLAG],
  async run (ctx, args) {
    if (args.positionals.length === 0) {
      const limits = await ctx.client.limits()
      if (args.bool('json')) await printJson(ctx, limits)
      else await printLines(ctx, table(['GROUP', 'LIMIT', 'RUNNING'], limits.map(l => [l.group, String(l.limit), String(l.running)])))
      return 0
    }
    if (args.positionals.length !== 2) {
      throw new UsageError("give a group and a limit, e.g. 'meshq limit render 4' (see 'meshq limit --help')")
    }
    const [group, value] = args.positionals
    const cap = value === 'none' ? null : parseInteger(value, 'limit', 1)
    await ctx.client.limit(group, cap)
    await printLines(ctx, [cap === null ? `${group}: no limit` : `${group}: at most ${cap} running at once`])
    return 0
  }
}

export const gc: Command = {
  name: 'gc',
  usage: 'gc --older-than DUR [--dry-run] [--json]',
  summary: 'Drops finished jobs older than DUR from the ledger on every node, with their output.',
  description: 'History goes in whole segments: a submitting node\'s 1000 jobs, once every one of them has finished\n' +
    'before the cut-off and no unfinished job waits for any of them. Dropped jobs are gone from ls, show and logs\n' +
    'everywhere. `meshq node --retain DUR` does the same every hour.',
  flags: [
    { name: 'older-than', arg: 'DUR', help: 'drop jobs that finished longer ago than this (e.g. 30d)' },
    { name: 'dry-run', help: 'only say what would be dropped' },
    JSON_FLAG
  ],
  async run (ctx, args) {
    noArguments(args)
    const olderThanMs = args.duration('older-than')
    if (olderThanMs === undefined) throw new UsageError("give --older-than DUR (see 'meshq gc --help')")
    const result = await ctx.client.gc(olderThanMs, args.bool('dry-run'))
    if (args.bool('json')) await printJson(ctx, result)
    else await printLines(ctx, [`${result.dryRun ? 'would drop' : 'dropped'} ${result.jobs} jobs in ${result.segments.length} segments`])
    return 0
  }
}

export const drain: Command = {
  name: 'drain',
  usage: 'drain [--peer ID]',
  summary: 'Stops a node claiming new jobs; its running jobs finish, then it exits.',
  flags: [{ name: 'peer', arg: 'ID', help: 'the peer id of the node to drain (default: this one)' }],
  async run (ctx, args) {
    noArguments(args)
    const peer = args.string('peer')
    await ctx.client.drain(peer)
    await printLines(ctx, [`draining ${peer ?? 'this node'}`])
    return 0
  }
}

export const stats: Command = {
  name: 'stats',
  usage: 'stats [--json]',
  summary: 'Counts per state and group, throughput, and per-node load.',
  flags: [JSON_FLAG],
  async run (ctx, args) {
    noArguments(args)
    const view = await ctx.client.stats()
    if (args.bool('json')) {
      await printJson(ctx, view)
      return 0
    }
    const count = (n: number | undefined): string => String(n ?? 0)
    const lines = table(['STATE', 'JOBS'], JOB_STATES.map(s => [paintState(s, ctx.color), count(view.states[s])]))
    lines.push('', `throughput: ${view.throughput.toFixed(2)} jobs/s (last minute)`)
    const groups = Object.entries(view.groups)
    if (groups.length > 0) {
      lines.push('', ...table(['GROUP', ...JOB_STATES.map(s => s.toUpperCase())],
        groups.map(([group, counts]) => [group, ...JOB_STATES.map(s => count(counts[s]))])))
    }
    if (view.nodes.length > 0) {
      lines.push('', ...table(['NODE', 'RUNNING', 'SLOTS'], view.nodes.map(n => [n.id, String(n.running), String(n.slots)])))
    }
    await printLines(ctx, lines)
    return 0
  }
}

export const peers: Command = {
  name: 'peers',
  usage: 'peers [--json]',
  summary: 'Cluster members and connected peers: state, slots in use, memory free for --mem, tags, addresses.',
  flags: [JSON_FLAG],
  async run (ctx, args) {
    noArguments(args)
    const peers = await ctx.client.peers()
    if (args.bool('json')) {
      await printJson(ctx, peers)
      return 0
    }
    await printLines(ctx, table(['ID', 'STATE', 'RUNNING', 'SLOTS', 'MEM FREE', 'TAGS', 'ADDRS'], peers.map(p => [
      p.self ? `${p.id} (self)` : p.id,
      p.state,
      String(p.running),
      String(p.slots),
      p.memFree === undefined ? '-' : formatMemory(p.memFree),
      p.tags.join(',') || '-',
      p.addrs.join(' ') || '-'
    ])))
    return 0
  }
}

export const top: Command = {
  name: 'top',
  usage: 'top [--once] [--json]',
  summary: 'The interactive dashboard.',
  flags: [
    { name: 'once', help: 'print one snapshot and exit' },
    { ...JSON_FLAG, help: 'with --once: print the snapshot as JSON' }
  ],
  async run (ctx, args) {
    noArguments(args)
    const runTop = await loadRunTop()
    const code = await runTop({ client: ctx.client, once: args.bool('once'), json: args.bool('json') })
    return typeof code === 'number' ? code : 0
  }
}
