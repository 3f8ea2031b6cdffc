/**
 * `meshq sub` on this node: a request's jobs are validated, matched against known idempotency keys,
 * checked for missing dependencies and group cycles, given ids in this node's open segment, and
 * written in one synced batch: only then is the submit acknowledged.
 */
import type { JobId, PeerIdString, SubmitRequest } from '../types.js'
import { DependencyCycleError, InvalidJobError, MissingDependencyError } from '../errors.js'
import type { Clock } from '../clock.js'
import type { Ledger } from '../crdt/ledger.js'
import { SegmentMap, segmentOf } from '../crdt/facts.js'
import type { FactChange } from '../crdt/facts.js'
import type { JobTable } from '../sched/table.js'
import { dependenciesOf, dependsOnGroup, groupDependenciesOf } from '../jobs/dependencies.js'
import { draftJob } from '../jobs/draft.js'
import type { JobDraft } from '../jobs/draft.js'
import { linkDrafts, planSubmit } from '../sched/expand.js'
import { isKnown } from './selection.js'

export interface SubmissionInit {
  self: PeerIdString
  clock: Clock
  ledger: Ledger
  table: JobTable
  /** Connected peers of an older protocol minor version than `minor`. */
  olderPeers: (minor: number) => Array<{ peer: string, minor: number }>
}

/** The protocol minor version that brought job arrays: an older node would run an array's spec as one job. */
const ARRAYS_MINOR = 2

/** Submits the jobs of a request; resolves with the ids the request is answered with, in order. */
export async function submitJobs (init: SubmissionInit, requests: SubmitRequest[]): Promise<JobId[]> {
  if (!Array.isArray(requests) || requests.length === 0) throw new InvalidJobError('nothing to submit: expected {"jobs": [...]}')
  const { clock, ledger, table, self } = init
  const now = clock.now()
  const plan = planSubmit(requests, (req, i) => withIndex(i, requests.length, () => draftJob(req, now)))
  const results: Array<JobId | undefined> = plan.drafts.map(d => d.key != null ? table.byKey(d.key) : undefined)
  const repeats = repeatedKeys(plan.drafts, results)
  const fresh = plan.drafts.map((d, i) => ({ draft: d, i })).filter(({ i }) => results[i] == null && !repeats.has(i))
  fresh.forEach(({ draft, i }) => withIndex(plan.origin[i], requests.length, () => { checkDependencies(table, draft, plan.drafts) }))
  if (fresh.some(({ draft }) => draft.array != null)) refuseOlderPeers(init)
  const slots = await ledger.allocateJobIds(fresh.length)
  fresh.forEach(({ i }, k) => { results[i] = slots[k].id })
  for (const [i, first] of repeats) results[i] = results[first]
  linkDrafts(plan, results)
  const facts: FactChange[] = fresh.map(({ i }, k) => {
    const { id, n, seq } = slots[k]
    const value = { ...plan.drafts[i], id, n, seq, submitter: self, submittedAt: now }
    return { doc: segmentOf(id) as string, map: SegmentMap.jobs, key: id, value }
  })
  await ledger.put(facts, { sync: true })
  return plan.answers.map(i => results[i] as JobId)
}

function checkDependencies (table: JobTable, draft: JobDraft, batch: JobDraft[]): void {
  if (draft.allowMissing !== true) {
    const missing = dependenciesOf(draft).find(dep => !dep.startsWith('#') && !isKnown(table, dep))
    if (missing != null) throw new MissingDependencyError(`dependency ${missing} does not exist (use --allow-missing to wait for it)`)
  }
  if (draft.group == null) return
  // the other jobs of the batch take part under stand-in ids `#i`
  const graph = {
    spec: (id: JobId) => id.startsWith('#') ? batch[Number(id.slice(1))] : table.get(id)?.facts.spec,
    members: function * (group: string) {
      yield * table.groupJobs(group)
      for (const [i, other] of batch.entries()) if (other.group === group && other !== draft) yield `#${i}` as JobId
    }
  }
  if (dependsOnGroup(graph, draft.group, dependenciesOf(draft), groupDependenciesOf(draft))) {
    throw new DependencyCycleError(`dependency cycle: the job would wait for its own group ${draft.group}`)
  }
}

function refuseOlderPeers (init: SubmissionInit): void {
  const [older] = init.olderPeers(ARRAYS_MINOR)
  if (older == null) return
  throw new InvalidJobError(
    `job arrays need every node at protocol 2.${ARRAYS_MINOR} or later: node ${older.peer} speaks 2.${older.minor} ` +
    'and would run the array as one job; upgrade it first'
  )
}

/** Drafts whose idempotency key an earlier draft of the same submit has (and no known job): draft → that earlier draft. */
function repeatedKeys (drafts: JobDraft[], known: Array<JobId | undefined>): Map<number, number> {
  const first = new Map<string, number>()
  const repeats = new Map<number, number>()
  drafts.forEach(({ key }, i) => {
    if (key == null || known[i] != null) return
    const earlier = first.get(key)
    if (earlier == null) first.set(key, i)
    else repeats.set(i, earlier)
  })
  return repeats
}

/** Runs a per-job check, naming the job in the error when the batch has several. */
function withIndex<T> (i: number, total: number, check: () => T): T {
  try {
    return check()
  } catch (err) {
    if (total > 1 && err instanceof Error) err.message = `job ${i + 1}: ${err.message}`
    throw err
  }
}
