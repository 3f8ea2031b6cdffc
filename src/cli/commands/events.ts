import { UsageError } from '../../errors.js'
import { FailReason, JOB_EVENT_KINDS, type JobEvent, type JobEventKind } from '../../types.js'
import { splitList } from '../../values.js'
import { JSON_FLAG, printLines, type Command } from '../context.js'

const DEFAULT_LIMIT = 100

export const events: Command = {
  name: 'events',
  usage: 'events [-f|--follow] [--state S[,S]] [--limit N] [--json]',
  summary: 'Job state changes across the mesh: submitted, started, done, failed, killed, lost, retried, removed.',
  description: [
    'One line per change: time, job, event, node, details (exit code, fail reason). Changes made on',
    'other nodes are reported as they reach this one. Without --follow, prints the latest events this',
    'node knows (its jobs in memory and every change since it started, at most the last 10,000) and',
    'exits; with --follow, then keeps printing new ones. A failure with retries left is "retried";',
    '"failed" means the job has failed for good. With --json, one JSON object per line, e.g. to act on',
    'failures:',
    '  meshq events --follow --state failed --json | while read -r e; do ...; done'
  ].join('\n'),
  flags: [
    { name: 'follow', short: 'f', help: 'keep printing new events' },
    { name: 'state', arg: 'S', repeat: true, help: `only these events (${JOB_EVENT_KINDS.join(', ')}; comma-separated or repeated)` },
    { name: 'limit', arg: 'N', help: `print at most the latest N past events (default ${DEFAULT_LIMIT}; 0: none)` },
    { ...JSON_FLAG, help: 'print one JSON object per line' }
  ],
  async run (ctx, args) {
    const kinds = splitList(args.list('state'))
    const unknown = kinds.find(kind => !JOB_EVENT_KINDS.includes(kind as JobEventKind))
    if (unknown !== undefined) throw new UsageError(`bad --state: '${unknown}' (one of ${JOB_EVENT_KINDS.join(', ')})`)
    const follow = args.bool('follow')
    const query = { kinds: kinds as JobEventKind[], limit: args.int('limit', 0) ?? DEFAULT_LIMIT, follow }
    const print = args.bool('json') ? (e: JobEvent) => JSON.stringify(e) : eventLine
    for await (const event of ctx.client.jobEvents(query)) await printLines(ctx, [print(event)])
    if (follow) throw new Error(`the node at ${ctx.client.describe()} closed the event stream (it stopped?)`)
    return 0
  }
}

/** `TIME  JOB  EVENT  NODE  DETAILS` */
function eventLine (e: JobEvent): string {
  return [e.at, e.job, e.event.padEnd(9), e.node ?? '-', eventDetails(e)].join('  ').trimEnd()
}

function eventDetails (e: JobEvent): string {
  const parts: string[] = []
  if (e.exitCode !== undefined && e.event !== 'started') parts.push(`exit ${e.exitCode}`)
  if (e.signal !== undefined) parts.push(`signal ${e.signal}`)
  if (e.failReason !== undefined && e.failReason !== FailReason.nonZeroExit) parts.push(e.failReason)
  if (e.detail !== undefined) parts.push(e.detail)
  if (e.event === 'submitted') parts.push(...[e.name, e.group === undefined ? undefined : `group ${e.group}`].filter(p => p !== undefined))
  return parts.join(', ')
}
