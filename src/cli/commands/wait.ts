import { forEachLimit } from '../../collections.js'
import { JobNotFoundError, UsageError } from '../../errors.js'
import type { JobView } from '../../types.js'
import { write } from '../../stream-write.js'
import { JSON_FLAG, printJson, type Command, type Context } from '../context.js'
import { JobWatch, outcome, settled, signalStatus } from '../watch.js'

/** Job ids looked up at once. */
const LOOKUPS_AT_ONCE = 16

export const wait: Command = {
  name: 'wait',
  usage: 'wait ID... | --group G [--json]',
  summary: 'Blocks until all the jobs have finished; exits 0 only if all succeeded.',
  description: [
    'With --group, waits for every job that is in the group when the command starts, on any host:',
    'the node first catches up with every member it can reach, so jobs submitted elsewhere count; a',
    'group with no job is an error. A job not known here is looked for on the other members first.',
    'An array\'s id waits for every task of the array. A job that is removed, or not found, counts as',
    'failed. Failures are listed on stderr; --json prints the final job records. Exit status: 0 if all',
    'succeeded; else 128 + N if a signal N ended the first job that did not succeed (as shells do: 143',
    'for SIGTERM, which `meshq kill` sends), else 1.'
  ].join('\n'),
  flags: [{ name: 'group', arg: 'G', help: 'every job of group G' }, JSON_FLAG],
  async run (ctx, args) {
    const group = args.string('group')
    if (args.positionals.length === 0 && group === undefined) {
      throw new UsageError("give job ids or --group G (see 'meshq wait --help')")
    }
    const controller = new AbortController()
    try {
      // Subscribe before reading the states, so that no change falls between the two.
      const watch = await JobWatch.open(ctx.client, controller.signal)
      const ids = new Set(args.positionals)
      if (group !== undefined) {
        const { unreachable } = await ctx.client.catchUp()
        for (const peer of unreachable) {
          await write(ctx.stderr, `meshq: member ${peer} is unreachable: jobs of group ${group} submitted there may be missing\n`)
        }
        const jobs = await ctx.client.list({ group })
        if (jobs.length === 0) throw new JobNotFoundError(`no job of group ${group} is known, here or on the members this node reached`)
        for (const job of jobs) ids.add(job.id)
        jobs.forEach(job => watch.seed(job))
      }
      const missing = new Set<string>()
      // a few at a time: a thousand connections at once overflow the node's accept queue (EAGAIN)
      await forEachLimit(args.positionals, LOOKUPS_AT_ONCE, async id => {
        try {
          const job = await ctx.client.get(id)
          if (job.array === undefined) {
            watch.seed(job)
            return
          }
          // an array is waited for task by task: events name tasks, and a failure is reported by task
          ids.delete(id)
          for (const task of await ctx.client.list({ array: id })) {
            ids.add(task.id)
            watch.seed(task)
          }
        } catch (err) {
          if ((err as Error).name !== 'JobNotFoundError') throw err
          missing.add(id)
        }
      })
      const waiting = [...ids].filter(id => !missing.has(id))
      await watch.until(() => waiting.every(id => settled(watch.get(id))))
      return await report(ctx, [...ids].map(id => ({ id, job: missing.has(id) ? undefined : watch.get(id) })), args.bool('json'))
    } finally {
      controller.abort()
    }
  }
}

async function report (ctx: Context, results: Array<{ id: string, job: JobView | null | undefined }>, json: boolean): Promise<number> {
  let status = 0
  for (const { id, job } of results) {
    const result = outcome(id, job)
    if (result.ok) continue
    if (status === 0) status = signalStatus(job) ?? 1
    await write(ctx.stderr, `meshq: ${result.message ?? `job ${id} failed`}\n`)
  }
  if (json) await printJson(ctx, results.flatMap(({ job }) => job == null ? [] : [job]))
  return status
}
