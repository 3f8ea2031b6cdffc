import { UsageError } from '../../errors.js'
import type { JobState } from '../../types.js'
import { JSON_FLAG, printJson, printLines, type Command } from '../context.js'

/** The word `meshq status` prints for each state: a job that has not started yet is `pending`, whatever it waits for. */
const STATUS_WORD: Record<JobState, string> = {
  pending: 'pending',
  ready: 'pending',
  running: 'running',
  done: 'success',
  failed: 'failed',
  killed: 'killed'
}

export const status: Command = {
  name: 'status',
  usage: 'status ID... [--json]',
  summary: 'Prints one word per job, for scripts: pending, running, success, failed or killed.',
  description: [
    'One line per id, in the order given, from one request to the node however many ids there are.',
    'pending: not started yet, whatever it waits for (ready, dependencies, --delay, a paused group, the',
    'backoff before a retry); running; success (exit 0); failed (no retries left); killed.',
    'A job not known here is looked for on the other members first; an id still unknown after that is an',
    'error (exit 1) that names it, and nothing is printed. --json prints [{"id", "status", "state"}], state',
    'being the job state of `meshq show`.'
  ].join('\n'),
  flags: [JSON_FLAG],
  async run (ctx, args) {
    if (args.positionals.length === 0) throw new UsageError("give job ids (see 'meshq status --help')")
    const jobs = await ctx.client.states(args.positionals)
    const rows = jobs.map(({ id, state }) => ({ id, status: STATUS_WORD[state], state }))
    if (args.bool('json')) await printJson(ctx, rows)
    else await printLines(ctx, rows.map(row => row.status))
    return 0
  }
}
