import { UsageError } from '../../errors.js'
import type { ModifyRequest } from '../../types.js'
import { JSON_FLAG, printJson, printLines, type Command } from '../context.js'
import { SUBMIT_FLAGS, submitOptionsFromArgs } from '../submit-options.js'
import { GROUP_FLAG, selectorOf } from './jobs.js'

/** The submit flags `mod` can change: none that moves a job in the dependency graph or elsewhere. */
const MODIFIABLE = new Set(['name', 'pri', 'retries', 'ttr', 'timeout', 'delay', 'tag', 'cores'])

export const mod: Command = {
  name: 'mod',
  usage: 'mod ID... | --group G [--pri N] [--retries N] [--tag T] [--cores N] [--ttr DUR] [--timeout DUR] [--delay DUR] [--name S] ' +
    '[--json]',
  summary: 'Changes jobs that are not running or done: priority, retries, tags, slots, TTR, timeout, delay, name.',
  description: 'A job that starts while the change travels runs as it was; its later retries use the change.\n' +
    '--tag replaces the job\'s tags (--tag "" clears them); --delay 0s makes a delayed job runnable now.\n' +
    'With --group, the group\'s running and finished jobs are left as they are.',
  flags: [GROUP_FLAG, ...SUBMIT_FLAGS.filter(f => MODIFIABLE.has(f.name)), JSON_FLAG],
  async run (ctx, args) {
    const change = submitOptionsFromArgs(args, { ...ctx, now: Date.now() }) as ModifyRequest
    if (Object.keys(change).length === 0) throw new UsageError(`nothing to change (see 'meshq mod --help')`)
    const jobs = await ctx.client.modify(selectorOf(args), change)
    if (args.bool('json')) await printJson(ctx, jobs)
    else await printLines(ctx, jobs.map(job => job.id))
    return 0
  }
}
