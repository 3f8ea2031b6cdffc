import { UsageError } from '../../errors.js'
import type { InviteView } from '../../types.js'
import { JSON_FLAG, printJson, printLines, type Command } from '../context.js'
import { table } from '../format.js'

export const invite: Command = {
  name: 'invite',
  usage: 'invite [--ttl DUR] [--uses N] [--json] | invite --list [--json] | invite --revoke ID',
  summary: 'Prints a one-line token that lets a new host join this cluster (`meshq node --join TOKEN`).',
  flags: [
    { name: 'ttl', arg: 'DUR', help: 'how long the token is valid (default 1h, at most 365d)' },
    { name: 'uses', arg: 'N', help: 'how many nodes may join with it (default 1)' },
    { name: 'list', help: 'list the invites issued in this cluster' },
    { name: 'revoke', arg: 'ID', help: 'revoke an invite: its token no longer admits anyone' },
    JSON_FLAG
  ],
  async run (ctx, args) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument '${args.positionals[0]}' (see 'meshq invite --help')`)
    const revoke = args.string('revoke')
    if (revoke !== undefined) {
      await ctx.client.revokeInvite(revoke)
      await printLines(ctx, [`revoked ${revoke}`])
      return 0
    }
    if (args.bool('list')) {
      const invites = await ctx.client.invites()
      if (args.bool('json')) {
        await printJson(ctx, invites)
        return 0
      }
      const status = (i: InviteView): string => i.revoked ? 'revoked' : i.expired ? 'expired' : i.used >= i.uses ? 'used up' : 'valid'
      await printLines(ctx, table(['ID', 'STATUS', 'USED', 'EXPIRES', 'BY'], invites.map(i => [
        i.id, status(i), `${i.used}/${i.uses}`, i.expiresAt, i.by
      ])))
      return 0
    }
    const created = await ctx.client.invite({
      ttlMs: args.duration('ttl') ?? 3_600_000,
      uses: args.int('uses', 1) ?? 1
    })
    if (args.bool('json')) await printJson(ctx, created)
    else await printLines(ctx, [created.token])
    return 0
  }
}

export const connect: Command = {
  name: 'connect',
  usage: 'connect MULTIADDR',
  summary: 'Tells this node where a member is: it dials the member at that address.',
  description: [
    'For members that lost each other: when both restarted on new addresses while the other was down,',
    'neither knows where the other is now. Once connected, each learns the other\'s new addresses and',
    'redials them from then on. MULTIADDR is one the member printed at start (listening on ...), or',
    'one from its `meshq peers` row; without /p2p/PEER the node checks that whoever answers is a member.',
    'A member this node is connected to already is not dialled again. Fails (exit 1) if nothing answers',
    'there or it is not a member of this cluster.'
  ].join('\n'),
  flags: [],
  async run (ctx, args) {
    if (args.positionals.length !== 1) {
      throw new UsageError("give one address, e.g. /ip4/10.0.0.7/tcp/7746/p2p/12D3Koo... (see 'meshq connect --help')")
    }
    const { peer } = await ctx.client.connect(args.positionals[0])
    await printLines(ctx, [`connected to ${peer}`])
    return 0
  }
}

export const evict: Command = {
  name: 'evict',
  usage: 'evict PEER',
  summary: 'Removes a member from the cluster: it is disconnected and refused from then on.',
  flags: [],
  async run (ctx, args) {
    if (args.positionals.length !== 1) throw new UsageError("give one peer id (see 'meshq evict --help')")
    const peer = args.positionals[0]
    await ctx.client.evict(peer)
    await printLines(ctx, [`evicted ${peer}`])
    return 0
  }
}
