import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { ControlKind, JobState, isTerminal } from '../types.js'
import type { AttemptView, Control, GcResult, JobStateView, LimitView, ModifyRequest, InviteCreated, InviteView, JobEvent, JobId, JobView, NodeEvent, NodeStatus, PeerIdString, PeerView, StatsView, SubmitRequest } from '../types.js'
import type { Engine, EventQuery, ListQuery, LogStream, Selector } from '../api/engine.js'
import { DependencyCycleError, InvalidJobError, JobNotFoundError, JobRunningError, MissingDependencyError, UsageError } from '../errors.js'
import type { Clock } from '../clock.js'
import type { Ledger } from '../crdt/ledger.js'
import { META_DOC, MetaMap, SegmentMap, attemptKey, controlKey, groupFactKey, isJobId, segmentOf } from '../crdt/facts.js'
import type { FactChange, GroupFact, LimitFact, PauseFact } from '../crdt/facts.js'
import type { JobTable, SealedJob, TableEntry } from '../sched/table.js'
import type { Scheduler } from '../sched/scheduler.js'
import { toJobView } from '../jobs/view.js'
import { encodeToken } from './membership.js'
import type { Membership } from './membership.js'
import type { Retention } from './retention.js'
import type { LogRequest, Mesh } from './mesh.js'
import type { NodeLoad } from './status-gossip.js'
import { dependenciesOf, dependsOnGroup, groupDependenciesOf } from '../jobs/dependencies.js'
import { draftJob } from '../jobs/draft.js'
import { draftPatch } from '../jobs/modify.js'
import type { JobDraft } from '../jobs/draft.js'
import { expandOutput, linkDrafts, planSubmit } from '../sched/expand.js'
import { JobEventLog, eventFacts } from './job-events.js'
import type { EventFacts } from './job-events.js'

export interface EngineInit {
  self: PeerIdString
  clusterId: string
  /** base64 of the cluster key, for invite tokens. */
  psk: string
  home: string
  version: string
  tags: string[]
  clock: Clock
  ledger: Ledger
  table: JobTable
  scheduler: Scheduler
  membership: Membership
  mesh: Mesh
  retention: Retention
  /** Called when `drain` of this node has finished its running jobs. */
  onDrained: () => void
}

/** How long a read waits to catch up with the other members before it gives up (see `catchUp`). */
const CATCH_UP_TIMEOUT_MS = 15_000
/** How often a followed log is checked for new output. */
const LOG_POLL_MS = 100
/** Window for the throughput figure of `stats`. */
const THROUGHPUT_WINDOW_MS = 60_000

/** The node as the control API serves it: reads from the job table, writes facts to the ledger. */
export class NodeEngine implements Engine {
  private readonly init: EngineInit
  private readonly finishedAt: number[] = []
  private readonly events: JobEventLog

  constructor (init: EngineInit) {
    this.init = init
    this.events = new JobEventLog(() => init.clock.now())
    for (const [, entry] of init.table.all()) this.events.seed(entry, this.eventFacts(entry))
    init.table.onChange((_, entry) => this.events.touch(entry, () => this.eventFacts(entry)))
    // the table takes in the ledger's changes first (run.ts subscribed it earlier): history loaded from disk is no news
    init.ledger.onChange((_, origin) => this.events.settle(origin !== 'load'))
    init.scheduler.settleWith(async (spec, result, stdoutPath) => await expandOutput(spec, result, stdoutPath, { submit: async jobs => await this.submit(jobs) }))
    init.table.onChange((_, entry) => {
      if (isTerminal(entry.derived.state) && entry.derived.attempt?.endedAt != null) this.finishedAt.push(init.clock.now())
    })
  }

  status (): NodeStatus {
    const { self, clusterId, home, scheduler, tags, version } = this.init
    return { id: self, clusterId, home, slots: scheduler.slots, running: scheduler.running, draining: scheduler.isDraining, tags, version }
  }

  async submit (requests: SubmitRequest[]): Promise<JobView[]> {
    if (!Array.isArray(requests) || requests.length === 0) throw new InvalidJobError('nothing to submit: expected {"jobs": [...]}')
    const { clock, ledger, table, self } = this.init
    const now = clock.now()
    const plan = planSubmit(requests, (req, i) => withIndex(i, requests.length, () => draftJob(req, now)))
    const results: Array<JobId | undefined> = plan.drafts.map(d => d.key != null ? table.byKey(d.key) : undefined)
    const repeats = repeatedKeys(plan.drafts, results)
    const fresh = plan.drafts.map((d, i) => ({ draft: d, i })).filter(({ i }) => results[i] == null && !repeats.has(i))
    fresh.forEach(({ draft, i }) => withIndex(plan.origin[i], requests.length, () => this.checkDependencies(draft, plan.drafts)))
    const slots = await ledger.allocateJobIds(fresh.length)
    fresh.forEach(({ i }, k) => { results[i] = slots[k].id })
    for (const [i, first] of repeats) results[i] = results[first]
    linkDrafts(plan, results)
    const facts: FactChange[] = fresh.map(({ i }, k) => {
      const { id, n, seq } = slots[k]
      return { doc: segmentOf(id) as string, map: SegmentMap.jobs, key: id, value: { ...plan.drafts[i], id, n, seq, submitter: self, submittedAt: now } }
    })
    await ledger.put(facts, { sync: true })
    return await Promise.all(plan.answers.map(async i => await this.get(results[i] as JobId)))
  }

  async list (query: ListQuery): Promise<JobView[]> {
    const { table } = this.init
    const matches = (state: JobState, group: string | undefined): boolean =>
      (query.state == null || state === query.state) && (query.group == null || group === query.group)
    const rows: Array<{ id: JobId, submittedAt: number, seq: number, entry?: TableEntry }> = []
    for (const [id, entry] of table.all()) {
      const { group, submittedAt, seq } = entry.facts.spec
      if (matches(entry.derived.state, group)) rows.push({ id, submittedAt, seq, entry })
    }
    for (const [id, job] of table.sealedJobs()) {
      if (matches(job.state, job.group)) rows.push({ id, submittedAt: job.submittedAt, seq: job.seq })
    }
    rows.sort((a, b) => b.submittedAt - a.submittedAt || b.seq - a.seq || (b.id < a.id ? -1 : 1))
    const page = rows.slice(0, query.limit ?? rows.length)
    const sealed = await this.sealedViews(page.filter(r => r.entry == null).map(r => r.id))
    return page.map(r => r.entry != null ? this.view(r.entry) : sealed.get(r.id) as JobView)
  }

  /**
   * A read barrier: resolves once this node holds what every reachable member held when asked,
   * so that what was acknowledged on another host is known here (read-your-writes across hosts).
   */
  async catchUp (): Promise<{ unreachable: string[] }> {
    return await this.init.mesh.catchUp(CATCH_UP_TIMEOUT_MS)
  }

  private known (id: string): boolean {
    return this.init.table.get(id) != null || this.init.table.sealedJob(id) != null
  }

  /** Before a job is reported missing, or a group's jobs are counted: catch up with the other members. */
  private async catchUpFor (selector: Selector): Promise<void> {
    if (selector.group != null || (selector.ids ?? []).some(id => !this.known(id))) await this.catchUp()
  }

  async get (id: string): Promise<JobView> {
    await this.catchUpFor({ ids: [id] })
    const entry = this.init.table.get(id)
    if (entry != null) return this.view(entry)
    const sealed = (await this.sealedViews([id as JobId])).get(id as JobId)
    if (sealed == null) throw new JobNotFoundError(`no job ${id}`)
    return sealed
  }

  async states (ids: string[]): Promise<JobStateView[]> {
    await this.catchUpFor({ ids })
    const states = ids.map(id => ({ id: id as JobId, state: this.stateOf(id) }))
    const missing = states.filter(s => s.state == null).map(s => s.id)
    if (missing.length > 0) throw new JobNotFoundError(`no job ${missing[0]}${missing.length > 1 ? ` (and ${missing.length - 1} more unknown ids)` : ''}`)
    return states as JobStateView[]
  }

  private stateOf (id: string): JobState | undefined {
    return this.init.table.get(id)?.derived.state ?? this.init.table.sealedJob(id)?.state
  }

  async kill (selector: Selector): Promise<JobView[]> {
    // every job of a sealed segment has finished: like a finished job in memory, nothing to kill
    const targets = (await this.select(selector, () => false, 'skip')).filter(e => !isTerminal(e.derived.state))
    await this.control(targets, ControlKind.kill)
    return targets.map(e => this.view(e))
  }

  async retry (selector: Selector): Promise<JobView[]> {
    const selected = await this.select(selector, job => job.state === JobState.failed || job.state === JobState.killed)
    const retriable = (e: TableEntry): boolean => e.derived.state === JobState.failed || e.derived.state === JobState.killed
    if (selector.ids != null) {
      const bad = selected.find(e => !retriable(e))
      if (bad != null) throw new InvalidJobError(`job ${bad.facts.spec.id} is ${bad.derived.state}: only failed or killed jobs can be retried`)
    }
    const targets = selected.filter(retriable)
    await this.control(targets, ControlKind.retry)
    return targets.map(e => this.view(e))
  }

  /** Removes the jobs named, or every job of the group that is not running; answers their records as they were. */
  async remove (selector: Selector): Promise<JobView[]> {
    const selected = await this.select(selector, () => true)
    const isRunning = (e: TableEntry): boolean => e.derived.state === JobState.running
    const running = selector.ids != null ? selected.find(isRunning) : undefined
    if (running != null) throw new JobRunningError(`job ${running.facts.spec.id} is running: kill it first`)
    const targets = selected.filter(e => !isRunning(e))
    const views = targets.map(e => this.view(e))
    await this.control(targets, ControlKind.remove)
    return views
  }

  async modify (selector: Selector, request: ModifyRequest): Promise<JobView[]> {
    const patch = draftPatch(request, this.init.clock.now())
    const selected = await this.select(selector, () => false)
    const modifiable = (e: TableEntry): boolean => e.derived.state !== JobState.running && e.derived.state !== JobState.done
    const refused = selector.ids != null ? selected.find(e => !modifiable(e)) : undefined
    if (refused != null) {
      const message = `job ${refused.facts.spec.id} is ${refused.derived.state}: only jobs that are not running or done can be changed`
      throw refused.derived.state === JobState.running ? new JobRunningError(message) : new InvalidJobError(message)
    }
    const targets = selected.filter(modifiable)
    await this.control(targets, ControlKind.modify, { patch })
    return targets.map(e => this.view(e))
  }

  async pause (group: string, forMs?: number): Promise<void> {
    const { table, clock } = this.init
    await this.putGroupFact(MetaMap.pauses, group, table.pauseStamp(group), { paused: true, until: forMs != null ? clock.now() + forMs : undefined })
  }

  async resume (group: string): Promise<void> {
    await this.putGroupFact(MetaMap.pauses, group, this.init.table.pauseStamp(group), { paused: false })
  }

  async gc (olderThanMs: number, dryRun: boolean): Promise<GcResult> {
    const result = await this.init.retention.collect(olderThanMs, dryRun)
    await this.init.retention.settled()
    return result
  }

  async limit (group: string, limit: number | null): Promise<void> {
    if (limit !== null && (!Number.isSafeInteger(limit) || limit < 1)) throw new UsageError(`a limit must be a whole number >= 1, got ${String(limit)}`)
    await this.putGroupFact(MetaMap.limits, group, this.init.table.limitStamp(group), { limit })
  }

  async limits (): Promise<LimitView[]> {
    const { table } = this.init
    return [...table.limited()].map(([group, limit]) => ({
      group, limit, running: table.groupJobs(group).filter(id => table.get(id)?.derived.state === JobState.running).length
    })).sort((a, b) => a.group < b.group ? -1 : 1)
  }

  async drain (peer?: string): Promise<void> {
    if (peer != null && peer !== this.init.self) {
      await this.init.membership.requestDrain(peer)
      return
    }
    void this.init.scheduler.drain().then(() => this.init.onDrained())
  }

  async stats (): Promise<StatsView> {
    const states = Object.fromEntries(Object.values(JobState).map(s => [s, 0])) as Record<JobState, number>
    const groups: StatsView['groups'] = {}
    const add = (state: JobState, group: string | undefined): void => {
      states[state]++
      if (group == null) return
      const counts = groups[group] ??= {}
      counts[state] = (counts[state] ?? 0) + 1
    }
    for (const [, entry] of this.init.table.all()) add(entry.derived.state, entry.facts.spec.group)
    for (const [, job] of this.init.table.sealedJobs()) add(job.state, job.group)
    const since = this.init.clock.now() - THROUGHPUT_WINDOW_MS
    while (this.finishedAt.length > 0 && this.finishedAt[0] < since) this.finishedAt.shift()
    const nodes = (await this.peers()).filter(p => p.state !== 'unreachable').map(p => ({ id: p.id, slots: p.slots, running: p.running }))
    return { states, groups, throughput: this.finishedAt.length / (THROUGHPUT_WINDOW_MS / 1000), nodes, coordination: this.init.scheduler.coordination() }
  }

  async peers (): Promise<PeerView[]> {
    return this.init.mesh.peers(this.load())
  }

  async invite (options: { ttlMs: number, uses: number }): Promise<InviteCreated> {
    const { membership, mesh, clusterId, psk } = this.init
    const { id, secret, expiresAt } = await membership.createInvite(options)
    const token = encodeToken({ cluster: clusterId, psk, invite: id, secret, addrs: mesh.addresses() })
    return { id, token, expiresAt: new Date(expiresAt).toISOString() }
  }

  async invites (): Promise<InviteView[]> {
    return this.init.membership.listInvites().map(i => ({
      id: i.id, by: i.by, createdAt: new Date(i.createdAt).toISOString(), expiresAt: new Date(i.expiresAt).toISOString(), uses: i.uses, used: i.used, revoked: i.revoked, expired: i.expired
    }))
  }

  async revokeInvite (id: string): Promise<void> {
    await this.init.membership.revoke(id)
  }

  async evict (peer: string): Promise<void> {
    await this.init.membership.evict(peer)
  }

  async connect (addr: string): Promise<{ peer: string }> {
    return { peer: await this.init.mesh.connect(addr) }
  }

  /** This node's load as it tells the others. */
  load (): NodeLoad {
    const { scheduler, tags } = this.init
    return { slots: scheduler.slots, running: scheduler.running, draining: scheduler.isDraining, tags, memFree: scheduler.freeMemory() }
  }

  subscribe (listener: (event: NodeEvent) => void): () => void {
    return this.init.table.onChange((_, entry) => {
      listener(entry.derived.removed ? { type: 'removed', id: entry.facts.spec.id } : { type: 'job', job: this.view(entry) })
    })
  }

  jobEvents (query: EventQuery): JobEvent[] {
    return this.events.history(query)
  }

  subscribeJobEvents (listener: (event: JobEvent) => void): () => void {
    return this.events.subscribe(listener)
  }

  async * readLog (id: string, stream: LogStream, options: { follow: boolean, signal: AbortSignal }): AsyncIterable<Uint8Array> {
    const attempt = latestStarted(await this.get(id))
    if (attempt == null) return
    const request: LogRequest = { job: id, epoch: attempt.epoch, stream, follow: options.follow }
    if (attempt.node === this.init.self) yield * this.localLog(request, options.signal)
    else yield * this.init.mesh.remoteLog(attempt.node, request, options.signal)
  }

  /** The output of one of this node's attempts; peers read it over `/meshq/logs/1`. */
  async * localLog (request: LogRequest, signal: AbortSignal): AsyncIterable<Uint8Array> {
    const { job, epoch, stream, follow } = request
    // the job id names a directory: a peer's request is checked on receipt, and here again
    if (!isJobId(job)) throw new UsageError(`not a job id: ${JSON.stringify(job)}`)
    const file = await open(join(this.init.home, 'output', job, `${epoch}.${stream}`), 'r').catch(() => undefined)
    if (file == null) return
    const ended = async (): Promise<boolean> =>
      (await this.get(job)).attempts.find(a => a.epoch === epoch && a.node === this.init.self)?.endedAt != null
    try {
      const buffer = Buffer.alloc(64 * 1024)
      let position = 0
      while (!signal.aborted) {
        // checked before reading, so that output written before the end is never missed
        const over = !follow || await ended()
        const { bytesRead } = await file.read(buffer, 0, buffer.length, position)
        if (bytesRead > 0) {
          position += bytesRead
          yield Uint8Array.prototype.slice.call(buffer, 0, bytesRead)
          continue
        }
        if (over) return
        await new Promise(resolve => setTimeout(resolve, LOG_POLL_MS))
      }
    } finally {
      await file.close()
    }
  }

  private eventFacts (entry: TableEntry): EventFacts {
    const { spec, controls, attempts } = entry.facts
    return eventFacts(this.view(entry), {
      submitter: spec.submitter,
      controls: controls.values(),
      basis: (epoch, node) => attempts.get(attemptKey(spec.id, epoch, node))?.basis ?? 0
    })
  }

  /** A job's record as clients see it. */
  view (entry: TableEntry): JobView {
    return toJobView(entry, spec => this.init.scheduler.readyReason(spec))
  }

  /**
   * The jobs a selector names, loading sealed segments back where `wanted` says a sealed job is needed.
   * A sealed job named by id that is not wanted is an error, or left out with `unwanted: 'skip'`.
   */
  private async select (selector: Selector, wanted: (job: SealedJob) => boolean, unwanted: 'refuse' | 'skip' = 'refuse'): Promise<TableEntry[]> {
    await this.catchUpFor(selector)
    const { table, ledger } = this.init
    const ids = selector.group != null ? table.groupJobs(selector.group) : selector.ids
    if (ids == null || ids.length === 0) {
      if (selector.group != null) return []
      throw new UsageError('give job ids or a group')
    }
    for (const id of ids) {
      const sealed = table.sealedJob(id)
      if (sealed != null && wanted(sealed)) await ledger.unseal(segmentOf(id) as string)
    }
    if (selector.group != null) return ids.map(id => table.get(id)).filter(e => e != null)
    return ids.flatMap(id => {
      const entry = table.get(id)
      if (entry != null) return [entry]
      const sealed = table.sealedJob(id)
      if (sealed == null) throw new JobNotFoundError(`no job ${id}`)
      if (unwanted === 'skip') return []
      throw new InvalidJobError(`job ${id} is ${sealed.state}`)
    })
  }

  /** Final records of jobs in sealed segments, read from the store. */
  private async sealedViews (ids: JobId[]): Promise<Map<JobId, JobView>> {
    const out = new Map<JobId, JobView>()
    for (const seg of new Set(ids.map(id => segmentOf(id) as string))) {
      for (const view of await this.init.ledger.sealedRecords<JobView>(seg)) out.set(view.id, view)
    }
    return out
  }

  private checkDependencies (draft: JobDraft, batch: JobDraft[]): void {
    const { table } = this.init
    if (draft.allowMissing !== true) {
      const missing = dependenciesOf(draft).find(dep => !dep.startsWith('#') && table.get(dep) == null && table.sealedJob(dep) == null)
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

  private async control (targets: TableEntry[], kind: ControlKind, extra: Pick<Control, 'patch'> = {}): Promise<void> {
    const { clock, ledger, self } = this.init
    const facts = targets.map(e => {
      const lamport = e.derived.lamport + 1
      const id = e.facts.spec.id
      const value: Control = { kind, lamport, by: self, at: clock.now(), ...extra }
      return { doc: segmentOf(id) as string, map: SegmentMap.controls, key: controlKey(id, lamport, self), value }
    })
    await ledger.put(facts, { sync: true })
  }

  /** Writes a group setting (pause, limit) that supersedes the one in force. */
  private async putGroupFact (map: typeof MetaMap.pauses | typeof MetaMap.limits, group: string, stamp: number, fact: Omit<PauseFact, keyof GroupFact> | Omit<LimitFact, keyof GroupFact>): Promise<void> {
    const { ledger, self } = this.init
    const lamport = stamp + 1
    await ledger.put([{ doc: META_DOC, map, key: groupFactKey(group, lamport, self), value: { ...fact, lamport, by: self } }], { sync: true })
  }
}

/** The attempt whose output `logs` shows: the latest that started. */
function latestStarted (job: JobView): AttemptView | undefined {
  return job.attempts.filter(a => a.startedAt != null).at(-1)
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
