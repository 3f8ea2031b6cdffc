/**
 * Dynamic dependencies (`meshq sub --expand GEN -- CMD`). A submit with `expand` becomes two jobs:
 * the generator G (`sh -c GEN`, marked `expand`) and CMD, which waits for G and for the group
 * `expand:<G>`. When G exits 0, the node that ran it submits every JSON line G printed (the
 * `sub --batch` format) as a job of that group, before it records G's end, so that CMD never sees
 * G done with the group still empty. A line that is not a valid job fails G and submits nothing.
 */
import { readFile } from 'node:fs/promises'
import { parseBatch } from '../jobs/batch.js'
import { generatorFields } from '../jobs/fields.js'
import { InvalidJobError } from '../errors.js'
import { FailReason } from '../types.js'
import type { JobId, JobSpec, SubmitRequest } from '../types.js'
import type { RunResult } from '../exec/executor.js'
import type { JobDraft } from '../jobs/draft.js'

/** The group of the jobs generator `gen` printed. */
export const expansionGroup = (gen: JobId): string => `expand:${gen}`

/** Idempotency key of the `n`th job a generator printed: a rerun of the generator submits nothing twice. */
const expansionKey = (gen: JobId, n: number): string => `${gen}:${n}`

/** What a generator that printed no job submits, so that the job waiting for the group can run. */
const NOTHING_PRINTED: SubmitRequest = { cmd: ['true'], cwd: '/', name: 'expand: nothing printed' }

/** Largest tail kept on an attempt (as the executor keeps it). */
const MAX_TAIL_BYTES = 2048

/**
 * A submit as drafts: a generator job before each request that has `expand`. Until ids are given,
 * `after` names another draft of the submit as `#<draft index>` (as `checkDependencies` expects).
 */
export interface SubmitPlan {
  drafts: JobDraft[]
  /** For each draft, the request it comes from. */
  origin: number[]
  /** Draft index of a job with `expand` → draft index of its generator. */
  generators: Map<number, number>
  /** The drafts answered to the client: one per request (a job, not its generator). */
  answers: number[]
}

/** An `after` entry naming an earlier job of the same submit by its 1-based position: `#1` (as `rm --json` prints them). */
const BATCH_REF = /^#(\d+)$/

/** Drafts every request, with a generator job before each request that has `expand`. */
export function planSubmit (requests: SubmitRequest[], draft: (req: SubmitRequest, index: number) => JobDraft): SubmitPlan {
  const plan: SubmitPlan = { drafts: [], origin: [], generators: new Map(), answers: [] }
  const add = (d: JobDraft, i: number): void => {
    const ref = (dep: JobId): JobId => batchRef(dep, i, plan.answers)
    plan.drafts.push({ ...d, after: d.after.map(ref), afterAny: d.afterAny?.map(ref) })
    plan.origin.push(i)
  }
  requests.forEach((req, i) => {
    if (req.expand != null) {
      plan.generators.set(plan.drafts.length + 1, plan.drafts.length)
      add({ ...draft(generatorRequest(req), i), expand: true }, i)
    }
    plan.answers.push(plan.drafts.length)
    add(draft(req, i), i)
  })
  return plan
}

function batchRef (dep: JobId, request: number, answers: number[]): JobId {
  if (!dep.startsWith('#')) return dep
  const match = BATCH_REF.exec(dep)
  const n = Number(match?.[1])
  if (match == null || n < 1 || n > request) {
    throw new InvalidJobError(`job ${request + 1}: after ${dep}: only an earlier job of the same submit can be named by its position`)
  }
  return `#${answers[n - 1]}` as JobId
}

/** Once ids are known: references within the submit become ids, and each job with `expand` waits for its generator and its group. */
export function linkDrafts (plan: SubmitPlan, ids: Array<JobId | undefined>): void {
  const link = (dep: JobId): JobId => dep.startsWith('#') ? ids[Number(dep.slice(1))] as JobId : dep
  plan.drafts = plan.drafts.map(d => ({ ...d, after: d.after.map(link), afterAny: d.afterAny?.map(link) }))
  for (const [job, gen] of plan.generators) {
    const genId = ids[gen] as JobId
    const draft = plan.drafts[job]
    plan.drafts[job] = { ...draft, after: [...draft.after, genId], afterGroup: [...draft.afterGroup, expansionGroup(genId)] }
  }
}

/** The generator of a request with `expand`: it waits for what the request waits for, and runs where it may run. */
function generatorRequest (req: SubmitRequest): SubmitRequest {
  if (typeof req.expand !== 'string' || req.expand.trim() === '') throw new InvalidJobError('expand must be a non-empty shell command')
  return {
    ...generatorFields(req),
    cmd: ['sh', '-c', req.expand],
    name: `expand${req.name != null ? ` ${req.name}` : ''}`,
    id: req.id != null ? `${req.id}:expand` : undefined
  }
}

export interface Expander {
  /** Submits all jobs or none (the node's submit). */
  submit: (requests: SubmitRequest[]) => Promise<unknown>
}

/**
 * Called with a finished attempt before it is recorded: if it is a generator that succeeded,
 * submits the jobs it printed, or turns the attempt into a failure saying why it could not.
 */
export async function expandOutput (spec: JobSpec, result: RunResult, stdoutPath: string, expander: Expander): Promise<RunResult> {
  if (spec.expand !== true || result.exitCode !== 0 || result.failReason != null) return result
  try {
    const jobs = await printedJobs(spec, result, stdoutPath)
    await expander.submit(jobs)
    return { ...result, tail: withTail(result.tail, `meshq --expand: submitted ${jobs.length} job(s) to group ${expansionGroup(spec.id)}`) }
  } catch (err) {
    const message = `meshq --expand: ${(err as Error).message}; nothing was submitted`
    return { ...result, failReason: FailReason.expandFailed, tail: withTail(result.tail, message) }
  }
}

/** The jobs a generator printed, in its expansion group, under keys that make a rerun submit nothing twice. */
async function printedJobs (spec: JobSpec, result: RunResult, stdoutPath: string): Promise<SubmitRequest[]> {
  const output = await readFile(stdoutPath)
  if (output.length !== result.stdoutBytes) {
    throw new InvalidJobError(`the output is larger than meshq keeps (${output.length} of ${result.stdoutBytes} bytes)`)
  }
  const text = output.toString('utf8')
  const client = { cwd: spec.cwd, env: { ...process.env, ...spec.env }, now: result.endedAt }
  const printed = text.trim() === '' || text.trim() === '[]' ? [NOTHING_PRINTED] : parseBatch(text, {}, client)
  return printed.map((job, i) => {
    if (job.group != null || job.id != null) {
      throw new InvalidJobError(`job ${i + 1} of the output sets ${job.group != null ? 'group' : 'id'}: --expand sets it`)
    }
    return { ...job, group: expansionGroup(spec.id), id: expansionKey(spec.id, i + 1) }
  })
}

function withTail (tail: string, line: string): string {
  const text = tail === '' || tail.endsWith('\n') ? `${tail}${line}\n` : `${tail}\n${line}\n`
  const bytes = Buffer.from(text)
  return bytes.length <= MAX_TAIL_BYTES ? text : bytes.subarray(bytes.length - MAX_TAIL_BYTES).toString('utf8')
}
