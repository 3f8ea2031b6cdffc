import type { Selector } from '../../api/engine.js'
import { UsageError } from '../../errors.js'
import { requeueRequest } from '../../jobs/fields.js'
import { JOB_STATES, type JobId, type JobState, type JobView } from '../../types.js'
import { write } from '../../stream-write.js'
import type { Args, FlagSpec } from '../args.js'
import { JSON_FLAG, printJson, printLines, type Command } from '../context.js'
import { jobDetails, jobTable } from '../format.js'

/** How many jobs `ls` shows without --limit or --all: reading 100,000 jobs' records takes a second and 27 MB. */
const LS_DEFAULT_LIMIT = 100

export const ls: Command = {
  name: 'ls',
  usage: 'ls [--state S] [--group G] [--array ID | --tasks] [--limit N | --all] [--json]',
  summary: 'Lists jobs, newest first.',
  description: [
    'TIME is how long a started job has run (so far), or how long an unstarted one has waited.',
    'REASON is the exit code of a finished job, or why a job is not running.',
    'A job array is one row, its REASON its tasks by state, unless --array or --tasks asks for its tasks.',
    `Shows the newest ${LS_DEFAULT_LIMIT} jobs unless --limit or --all says otherwise, and says so on stderr when there are more.`
  ].join('\n'),
  flags: [
    { name: 'state', arg: 'S', help: `only jobs in state S (${JOB_STATES.join(', ')})` },
    { name: 'group', arg: 'G', help: 'only jobs of group G' },
    { name: 'array', arg: 'ID', help: 'the tasks of array ID, one row each' },
    { name: 'tasks', help: 'the tasks of every array, one row each, instead of a row per array' },
    { name: 'limit', arg: 'N', help: `at most N jobs (default ${LS_DEFAULT_LIMIT})` },
    { name: 'all', help: 'every job' },
    JSON_FLAG
  ],
  async run (ctx, args) {
    const state = args.string('state')
    if (state !== undefined && !JOB_STATES.includes(state as JobState)) {
      throw new UsageError(`bad --state: '${state}' (one of ${JOB_STATES.join(', ')})`)
    }
    const given = args.int('limit', 1)
    if (given !== undefined && args.bool('all')) throw new UsageError('--limit and --all contradict each other: choose one')
    const limit = args.bool('all') ? undefined : given ?? LS_DEFAULT_LIMIT
    const found = await ctx.client.list({
      state: state as JobState | undefined,
      group: args.string('group'),
      array: args.string('array'),
      tasks: args.bool('tasks') || undefined,
      // one more than shown tells whether there are more
      limit: limit === undefined ? undefined : limit + 1
    })
    const jobs = limit === undefined ? found : found.slice(0, limit)
    if (found.length > jobs.length) await write(ctx.stderr, `meshq: showing the newest ${limit ?? 0} jobs; --limit N or --all for more\n`)
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
    const job = await ctx.client.get(onlyId(args))
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
    for await (const chunk of ctx.client.readLog(onlyId(args), stream, { follow: args.bool('follow') })) {
      await write(ctx.stdout, chunk)
    }
    return 0
  }
}

export const GROUP_FLAG: FlagSpec = { name: 'group', arg: 'G', help: 'every job of group G' }

export function selectorOf (args: Args): Selector {
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
      const jobs = await ctx.client[name](selectorOf(args))
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
  summary: 'Removes jobs that are not running (with --group: every job of G that is not running).',
  description: [
    'Prints the ids of the removed jobs. With --json, prints each removed job as one JSON line that',
    '`meshq sub --batch` accepts again, to requeue them: meshq rm --group G --json > jobs.jsonl, later',
    'meshq sub --batch < jobs.jsonl. Lines come in dependency order; a dependency on a job removed with',
    'it becomes "#N" (line N of the same batch), so the jobs are resubmitted together and still wait for',
    'each other. The idempotency key (--id) is left out: it still names the removed job.'
  ].join('\n'),
  flags: [GROUP_FLAG, { ...JSON_FLAG, help: 'print the removed jobs as `sub --batch` lines' }],
  async run (ctx, args) {
    const json = args.bool('json')
    if (json) await printLines(ctx, requeueLines(await ctx.client.removeRecords(selectorOf(args)), Date.now()))
    else await printLines(ctx, await ctx.client.remove(selectorOf(args)))
    return 0
  }
}

/** Removed jobs as `sub --batch` lines, dependencies first; an edge between two of them becomes `#N`. */
function requeueLines (jobs: JobView[], now: number): string[] {
  const ordered = dependencyOrder(jobs)
  const lineOf = new Map(ordered.map((job, i) => [job.id, i + 1]))
  return ordered.map((job, i) => JSON.stringify(requeueRequest(job, dep => {
    const n = lineOf.get(dep)
    return n !== undefined && n <= i ? `#${n}` : dep
  }, now)))
}

/** Jobs in submit order, except that a job comes after those of them it waits for (a cycle keeps its ids). */
function dependencyOrder (jobs: JobView[]): JobView[] {
  const byId = new Map(jobs.map(job => [job.id, job]))
  const seen = new Set<JobId>()
  const ordered: JobView[] = []
  const visit = (job: JobView): void => {
    if (seen.has(job.id)) return
    seen.add(job.id)
    for (const dep of [...job.after, ...job.afterAny ?? []]) {
      const other = byId.get(dep)
      if (other !== undefined) visit(other)
    }
    ordered.push(job)
  }
  const bySubmit = (a: JobView, b: JobView): number => Date.parse(a.submittedAt) - Date.parse(b.submittedAt) || (a.id < b.id ? -1 : 1)
  for (const job of [...jobs].sort(bySubmit)) visit(job)
  return ordered
}
