import type { Selector } from '../../api/engine.js'
import { UsageError } from '../../errors.js'
import { JOB_STATES, type JobId, type JobState, type JobView } from '../../types.js'
import type { Args, FlagSpec } from '../args.js'
import { JSON_FLAG, printJson, printLines, write, type Command } from '../context.js'
import { jobDetails, jobTable } from '../format.js'

const path = (id: string): string => `/jobs/${encodeURIComponent(id)}`

export const ls: Command = {
  name: 'ls',
  usage: 'ls [--state S] [--group G] [--limit N] [--json]',
  summary: 'Lists jobs, newest first.',
  description: 'TIME is how long a started job has run (so far), or how long an unstarted one has waited.\nREASON is the exit code of a finished job, or why a job is not running.',
  flags: [
    { name: 'state', arg: 'S', help: `only jobs in state S (${JOB_STATES.join(', ')})` },
    { name: 'group', arg: 'G', help: 'only jobs of group G' },
    { name: 'limit', arg: 'N', help: 'at most N jobs' },
    JSON_FLAG
  ],
  async run (ctx, args) {
    const query = new URLSearchParams()
    const state = args.string('state')
    if (state !== undefined) {
      if (!JOB_STATES.includes(state as JobState)) throw new UsageError(`bad --state: '${state}' (one of ${JOB_STATES.join(', ')})`)
      query.set('state', state)
    }
    const group = args.string('group')
    if (group !== undefined) query.set('group', group)
    const limit = args.int('limit', 1)
    if (limit !== undefined) query.set('limit', String(limit))
    const { jobs } = await ctx.client.request<{ jobs: JobView[] }>('GET', `/jobs${query.size > 0 ? `?${query}` : ''}`)
    if (args.bool('json')) await printJson(ctx, jobs)
    else await printLines(ctx, jobTable(jobs, ctx.color))
    return 0
  }
}

export const show: Command = {
  name: 'show',
  usage: 'show ID [--json]',
  summary: 'Shows one job: its spec, its state and why (reason), and every attempt.',
  flags: [JSON_FLAG],
  async run (ctx, args) {
    const job = await ctx.client.request<JobView>('GET', path(onlyId(args)))
    if (args.bool('json')) await printJson(ctx, job)
    else await printLines(ctx, jobDetails(job, ctx.color))
    return 0
  }
}

export const logs: Command = {
  name: 'logs',
  usage: 'logs ID [-f|--follow] [--stderr]',
  summary: "Prints the job's output (stdout, or stderr with --stderr), from whichever node ran it.",
  flags: [
    { name: 'follow', short: 'f', help: 'keep printing until the job ends' },
    { name: 'stderr', help: 'print stderr instead of stdout' }
  ],
  async run (ctx, args) {
    const stream = args.bool('stderr') ? 'stderr' : 'stdout'
    const follow = args.bool('follow') ? '&follow=1' : ''
    for await (const chunk of ctx.client.stream(`${path(onlyId(args))}/logs?stream=${stream}${follow}`)) {
      await write(ctx.stdout, chunk)
    }
    return 0
  }
}

const GROUP_FLAG: FlagSpec = { name: 'group', arg: 'G', help: 'every job of group G' }

function selectorOf (args: Args): Selector {
  const group = args.string('group')
  if (args.positionals.length === 0 && group === undefined) {
    throw new UsageError(`give job ids or --group G (see 'meshq ${args.command} --help')`)
  }
  return { ...(args.positionals.length > 0 ? { ids: args.positionals } : {}), ...(group === undefined ? {} : { group }) }
}

function onlyId (args: Args): string {
  if (args.positionals.length !== 1) throw new UsageError(`give one job id (see 'meshq ${args.command} --help')`)
  return args.positionals[0]
}

function action (name: 'kill' | 'retry', summary: string): Command {
  return {
    name,
    usage: `${name} ID... | --group G [--json]`,
    summary,
    description: 'Prints the ids of the jobs it applied to (the job records with --json).',
    flags: [GROUP_FLAG, JSON_FLAG],
    async run (ctx, args) {
      const { jobs } = await ctx.client.request<{ jobs: JobView[] }>('POST', `/jobs/${name}`, selectorOf(args))
      if (args.bool('json')) await printJson(ctx, jobs)
      else await printLines(ctx, jobs.map(job => job.id))
      return 0
    }
  }
}

export const kill = action('kill', 'Kills running jobs (their whole process group) and stops queued ones from running.')
export const retry = action('retry', 'Makes failed or killed jobs runnable again.')

export const rm: Command = {
  name: 'rm',
  usage: 'rm ID... | --group G [--json]',
  summary: 'Removes jobs that are not running.',
  description: 'Prints the ids of the removed jobs (a JSON array with --json).',
  flags: [GROUP_FLAG, JSON_FLAG],
  async run (ctx, args) {
    const { ids } = await ctx.client.request<{ ids: JobId[] }>('POST', '/jobs/rm', selectorOf(args))
    if (args.bool('json')) await printJson(ctx, ids)
    else await printLines(ctx, ids)
    return 0
  }
}
