import { MAX_BODY_BYTES } from '../../api/protocol.js'
import { UsageError } from '../../errors.js'
import type { JobView, SubmitRequest } from '../../types.js'
import { write } from '../../stream-write.js'
import { parseBatch } from '../../jobs/batch.js'
import { EXPORT_NONE } from '../../jobs/environment.js'
import { buildRequest, type ClientSide } from '../../jobs/submit-options.js'
import type { Args } from '../args.js'
import { JSON_FLAG, printJson, printLines, type Command, type Context } from '../context.js'
import { MAX_SCRIPT_BYTES, readScriptFile, scriptCommand, scriptFromInput, withScriptOptions, type Script } from '../script.js'
import { SUBMIT_FLAGS, submitOptionsFromArgs } from '../submit-options.js'
import { JobWatch, outcome, settled, signalStatus } from '../watch.js'

/** Nobody means to pipe more than this into `--batch`; the node takes 16 MiB per submit anyway. */
const MAX_BATCH_INPUT_BYTES = 64 * 1024 * 1024

export const sub: Command = {
  name: 'sub',
  usage: [
    'sub [opts] [--] CMD [ARGS...]',
    '       meshq sub [opts] SCRIPT',
    '       meshq sub [opts] < SCRIPT',
    '       meshq sub --batch [opts] < FILE'
  ].join('\n'),
  summary: 'Submits a job and prints its id.',
  description: [
    'The first argument that is not a flag starts the command: it and everything after it are the job\'s',
    'command line (or put the command after --).',
    '',
    'A sole argument before any -- that names a text file is a script, as for sbatch: its text is stored',
    'in the job (it runs on any node), and "#MESHQ --flag value" lines in the comment block at its top',
    'give options (flags on the command line win; --env variables are merged). Without a command, a',
    'script is read from stdin if stdin is not a terminal. An unknown flag in a #MESHQ line is a usage',
    'error naming the line (docs/jobs.md).',
    '',
    'The environment of meshq sub is copied into the job (except MESHQ_* and login-session variables such',
    'as SSH_AUTH_SOCK); --export NONE or --export K1,K2 narrows it, --env adds to it; at most 64 KiB.',
    'With --batch only what --export (or a job\'s "export") names is copied. Every member of the',
    'cluster can read the environment in the ledger.',
    '',
    '--after and --after-group wait for success: if a dependency fails or is killed, the job fails with',
    'reason dependency-failed (retry of the dependency revives it). --after-any and --after-group-any',
    'wait for the end, whatever the outcome. --begin takes 2026-12-24T18:00 (ISO 8601), HH:MM (the next',
    'such time) or now+1h; a time in the past runs the job now (and says so).',
    '',
    '--batch reads jobs from stdin: JSON lines, or one JSON array, of objects such as',
    '{"cmd": ["ls", "-l"], "group": "g", "after": ["ID"], "ttr": "5m"} with the flags below as fields',
    '(either spelling: "after-group" or "afterGroup"). Flags given with --batch are defaults for every',
    'job; a field of the job replaces them. If any line is invalid, nothing is submitted.',
    'In "after", "#N" names the Nth job of the same batch (an earlier one), as `rm --json` prints them.',
    '',
    '--expand GEN submits two jobs: GEN (sh -c GEN, with the same group, dependencies, priority, retries,',
    'ttr, delay, cwd, env and tags) and the command, which waits for GEN and for every job GEN prints; the',
    'id printed is the command\'s. When GEN exits 0, each JSON line of its',
    'stdout (the --batch format, without "group" or "id") is submitted as a job of group expand:<GEN id>;',
    'a line that is not a valid job makes GEN fail (reason expand-failed) and nothing is submitted.',
    '',
    '--on-success, --on-failure and --on-exit run a shell command (sh -c) on the node that ran the job,',
    'once the attempt is recorded (--on-failure only when no retry is left), with MESHQ_JOB_ID,',
    'MESHQ_ATTEMPT, MESHQ_NODE, MESHQ_JOB_STATE, MESHQ_EXIT_CODE, MESHQ_SIGNAL, MESHQ_FAIL_REASON,',
    'MESHQ_STDOUT, MESHQ_STDERR (output files), MESHQ_TMPDIR and MESHQ_HOME set. It never changes the job.',
    '--tmpdir runs each attempt in a new <cwd>/.meshq-<ID>-<attempt>-<random>, also its TMPDIR (docs/jobs.md).',
    '',
    '--wait streams the job\'s stdout and stderr and exits with its exit code: 128 + N if a signal N',
    'ended it (as shells do: 143 for SIGTERM, which `meshq kill` sends), 1 if it failed without either.',
    'With --json, --wait prints the final job record instead of the output.'
  ].join('\n'),
  flags: [
    ...SUBMIT_FLAGS,
    { name: 'batch', help: 'read jobs from stdin (JSON lines or one JSON array)' },
    { name: 'wait', help: 'wait for the job, stream its output, exit with its exit code' },
    { ...JSON_FLAG, help: 'print the job record(s) as JSON instead of ids' }
  ],
  restAfterFirstPositional: true,
  async run (ctx, args) {
    const requests = await requestsFrom(ctx, args)
    await warnPastBegin(ctx, requests, Date.now())
    const body = { jobs: requests }
    const size = Buffer.byteLength(JSON.stringify(body))
    if (size > MAX_BODY_BYTES) {
      const mib = (size / 2 ** 20).toFixed(1)
      throw new UsageError(`the batch is ${mib} MiB; a node takes at most ${MAX_BODY_BYTES / 2 ** 20} MiB per submit: split it`)
    }
    if (args.bool('wait') && requests.some(r => r.array != null)) {
      throw new UsageError('--wait streams one job\'s output: for an array, submit it, then meshq wait ARRAYID')
    }
    if (args.bool('wait')) return await submitAndWait(ctx, body, args.bool('json'))
    const jobs = await ctx.client.submit(requests)
    if (!args.bool('json')) await printLines(ctx, jobs.map(job => job.id))
    else await printJson(ctx, args.bool('batch') ? jobs : jobs[0])
    return 0
  }
}

async function requestsFrom (ctx: Context, args: Args): Promise<SubmitRequest[]> {
  const client: ClientSide = { cwd: ctx.cwd, env: ctx.env, now: Date.now(), copyEnv: true }
  const options = submitOptionsFromArgs(args, client)
  if (!args.bool('batch')) {
    const script = await scriptOf(ctx, args)
    if (script === undefined) return [buildRequest(args.positionals, options, client)]
    return [buildRequest(scriptCommand(script), withScriptOptions(script, options, client), client)]
  }
  if (args.positionals.length > 0) throw new UsageError('--batch reads the jobs from stdin: give no command')
  if (args.bool('wait')) throw new UsageError('--wait cannot be combined with --batch')
  // the copy would be repeated in every job of the batch: only what --export (or "export") names
  const input = await readInput(ctx.stdin, MAX_BATCH_INPUT_BYTES, '--batch')
  return parseBatch(input.toString('utf8'), { export: [EXPORT_NONE], ...options }, client)
}

/**
 * The script to submit, if any: a sole argument before any `--` that names a text file, or,
 * without a command, stdin when it is not a terminal.
 */
async function scriptOf (ctx: Context, args: Args): Promise<Script | undefined> {
  const [first, ...rest] = args.positionals
  if (first !== undefined) return rest.length === 0 && !args.endOfFlags ? await readScriptFile(first, ctx.cwd) : undefined
  if ((ctx.stdin as { isTTY?: boolean }).isTTY === true) return undefined
  return scriptFromInput(await readInput(ctx.stdin, MAX_SCRIPT_BYTES, 'a script'))
}

async function readInput (stream: NodeJS.ReadableStream, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    size += buffer.length
    if (size > max) throw new UsageError(`${what}: more than ${max < 2 ** 20 ? `${max / 1024} KiB` : `${max / 2 ** 20} MiB`} on stdin`)
    chunks.push(buffer)
  }
  return Buffer.concat(chunks)
}

/** `--begin` in the past is no error: the job may start at once, and the user hears why. */
async function warnPastBegin (ctx: Context, requests: SubmitRequest[], now: number): Promise<void> {
  const past = requests.find(r => typeof r.begin === 'string' && Date.parse(r.begin) <= now)
  if (past !== undefined) await write(ctx.stderr, `meshq: --begin ${String(past.begin)} is in the past: the job can start now\n`)
}

/** After the job ends, followers still reading its output get this long to finish. */
const OUTPUT_GRACE_MS = 10_000

async function submitAndWait (ctx: Context, body: { jobs: SubmitRequest[] }, json: boolean): Promise<number> {
  const controller = new AbortController()
  const { signal } = controller
  try {
    const watch = await JobWatch.open(ctx.client, signal)
    const [job] = await ctx.client.submit(body.jobs)
    watch.seed(job)
    const id = job.id
    const followers = json ? [] : [followLog(ctx, watch, id, 'stdout', signal), followLog(ctx, watch, id, 'stderr', signal)]
    await watch.until(() => settled(watch.get(id)))
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all(followers),
      new Promise(resolve => { timer = setTimeout(resolve, OUTPUT_GRACE_MS) })
    ])
    clearTimeout(timer)
    const final = watch.get(id)
    if (json && final != null) await printJson(ctx, final)
    const { ok, message } = outcome(id, final)
    if (ok) return 0
    if (final?.exitCode !== undefined && final.exitCode > 0 && final.exitCode < 256) return final.exitCode
    await write(ctx.stderr, `meshq: ${message ?? `job ${id} failed`}\n`)
    return signalStatus(final) ?? 1
  } finally {
    controller.abort()
  }
}

const latestEpoch = (job: JobView | null | undefined): number => job?.attempts.at(-1)?.epoch ?? -1

/**
 * Copies one of the job's outputs while it runs. A follow ends with its attempt; if the job is then
 * retried, the next attempt is followed too. If the job ended unseen, its last output is read once.
 */
async function followLog (ctx: Context, watch: JobWatch, id: string, stream: 'stdout' | 'stderr', signal: AbortSignal): Promise<void> {
  const out = stream === 'stdout' ? ctx.stdout : ctx.stderr
  /** Copies the output of the attempt current at the node; says whether there was any. */
  const copy = async (follow: boolean): Promise<boolean> => {
    let any = false
    for await (const chunk of ctx.client.readLog(id, stream, { follow, signal })) {
      any = true
      await write(out, chunk)
    }
    return any
  }
  try {
    while (true) {
      const before = latestEpoch(watch.get(id))
      // Which attempt was copied: the one current when output arrived, else (none yet) the one before.
      const followed = await copy(true) ? latestEpoch(watch.get(id)) : before
      await watch.until(() => {
        const job = watch.get(id)
        return settled(job) || (job?.state === 'running' && latestEpoch(job) > followed)
      })
      const job = watch.get(id)
      if (!settled(job)) continue
      if (job != null && latestEpoch(job) > followed) await copy(false)
      return
    }
  } catch (err) {
    if (!signal.aborted) await write(ctx.stderr, `meshq: reading the job's ${stream}: ${(err as Error).message}\n`)
  }
}
