// Longer than 300 lines on purpose: it is the one implementation of the `Engine` interface (src/api/engine.ts), a
// short method per API call, with the work in submission.ts, selection.ts, job-logs.ts, job-events.ts and
// stats.ts. Split by method, the API would be read across files for no gain.
import { ControlKind, JobState, isTerminal } from '../types.js'
import type {
  Control, GcResult, JobStateView, LimitView, ModifyRequest, InviteCreated, InviteView, JobEvent, JobId, JobView, NodeEvent, NodeStatus,
  PeerIdString, PeerView, StatsView, SubmitRequest
} from '../types.js'
import type { Engine, EventQuery, ListQuery, LogStream, Selector } from '../api/engine.js'
import { InvalidJobError, JobNotFoundError, JobRunningError, UsageError } from '../errors.js'
import type { Clock } from '../clock.js'
import type { Ledger } from '../crdt/ledger.js'
import { META_DOC, MetaMap, SegmentMap, attemptKey, controlKey, groupFactKey, segmentOf } from '../crdt/facts.js'
import type { GroupFact, LimitFact, PauseFact } from '../crdt/facts.js'
import type { JobTable, SealedJob, TableEntry } from '../sched/table.js'
import type { Scheduler } from '../sched/scheduler.js'
import { toJobView } from '../jobs/view.js'
import { arrayView } from '../sched/array-view.js'
import { encodeToken } from '../net/membership.js'
import type { Membership } from '../net/membership.js'
import type { Retention } from './retention.js'
import { jobCounts } from './stats.js'
import type { Throughput } from './stats.js'
import { isKnown, listJobs, sealedViews, selectJobs } from './selection.js'
import type { JobLogs } from './job-logs.js'
import { submitJobs } from './submission.js'
import type { Mesh } from '../net/mesh.js'
import type { NodeLoad } from '../net/status-gossip.js'
import { draftPatch } from '../jobs/modify.js'
import { expandOutput } from '../sched/expand.js'
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
  throughput: Throughput
  logs: JobLogs
  /** Called when `drain` of this node has finished its running jobs. */
  onDrained: () => void
}

/** How long a read waits to catch up with the other members before it gives up (see `catchUp`). */
const CATCH_UP_TIMEOUT_MS = 15_000

/** The node as the control API serves it: reads from the job table, writes facts to the ledger. */
export class NodeEngine implements Engine {
  private readonly init: EngineInit
  private readonly events: JobEventLog

  constructor (init: EngineInit) {
    this.init = init
    this.events = new JobEventLog(() => init.clock.now())
    // made before the ledger loads: the table takes in the ledger's changes first (run.ts subscribed
    // it earlier), and history loaded from disk is no news
    init.table.onChange((_, entry) => this.events.touch(entry, () => this.eventFacts(entry)))
    init.ledger.onChange((_, origin) => this.events.settle(origin !== 'load'))
    init.scheduler.settleWith(async (spec, result, stdoutPath) =>
      await expandOutput(spec, result, stdoutPath, { submit: async jobs => await this.submit(jobs) }))
  }

  status (): NodeStatus {
    const { self, clusterId, home, scheduler, tags, version } = this.init
    return { id: self, clusterId, home, slots: scheduler.slots, running: scheduler.running, draining: scheduler.isDraining, tags, version }
  }

  async submit (requests: SubmitRequest[]): Promise<JobView[]> {
    const ids = await submitJobs({ ...this.init, olderPeers: minor => this.init.mesh.olderPeers(minor) }, requests)
    return await Promise.all(ids.map(async id => await this.get(id)))
  }

  async list (query: ListQuery): Promise<JobView[]> {
    return await listJobs(this.init, query, entry => this.view(entry), spec => this.init.scheduler.readyReason(spec))
  }

  /**
   * A read barrier: resolves once this node holds what every reachable member held when asked,
   * so that what was acknowledged on another host is known here (read-your-writes across hosts).
   */
  async catchUp (): Promise<{ unreachable: string[] }> {
    return await this.init.mesh.catchUp(CATCH_UP_TIMEOUT_MS)
  }

  private known (id: string): boolean {
    return isKnown(this.init.table, id)
  }

  /** Before a job is reported missing, or a group's jobs are counted: catch up with the other members. */
  private async catchUpFor (selector: Selector): Promise<void> {
    if (selector.group != null || (selector.ids ?? []).some(id => !this.known(id))) await this.catchUp()
  }

  async get (id: string): Promise<JobView> {
    await this.catchUpFor({ ids: [id] })
    const entry = this.init.table.get(id)
    if (entry != null) return this.view(entry)
    const array = arrayView(this.init.table, id, spec => this.init.scheduler.readyReason(spec))
    if (array != null) return array
    const sealed = (await sealedViews(this.init.ledger, [id as JobId])).get(id as JobId)
    if (sealed == null) throw new JobNotFoundError(`no job ${id}`)
    return sealed
  }

  async states (ids: string[]): Promise<JobStateView[]> {
    await this.catchUpFor({ ids })
    const states = ids.map(id => ({ id: id as JobId, state: this.stateOf(id) }))
    const missing = states.filter(s => s.state == null).map(s => s.id)
    if (missing.length > 0) {
      const more = missing.length > 1 ? ` (and ${missing.length - 1} more unknown ids)` : ''
      throw new JobNotFoundError(`no job ${missing[0]}${more}`)
    }
    return states as JobStateView[]
  }

  private stateOf (id: string): JobState | undefined {
    const { table } = this.init
    return table.get(id)?.derived.state ?? table.sealedJob(id)?.state ?? table.arrayState(id)
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
    const bad = this.named(selector, selected).find(e => !retriable(e))
    if (bad != null) {
      throw new InvalidJobError(`job ${bad.facts.spec.id} is ${bad.derived.state}: only failed or killed jobs can be retried`)
    }
    const targets = selected.filter(retriable)
    await this.control(targets, ControlKind.retry)
    return targets.map(e => this.view(e))
  }

  /** Removes the jobs named, or every job of the group that is not running; answers their records as they were. */
  async remove (selector: Selector): Promise<JobView[]> {
    const selected = await this.select(selector, () => true)
    const isRunning = (e: TableEntry): boolean => e.derived.state === JobState.running
    const running = this.named(selector, selected).find(isRunning)
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
    const refused = this.named(selector, selected).find(e => !modifiable(e))
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
    const until = forMs != null ? clock.now() + forMs : undefined
    await this.putGroupFact(MetaMap.pauses, group, table.pauseStamp(group), { paused: true, until })
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
    if (limit !== null && (!Number.isSafeInteger(limit) || limit < 1)) {
      throw new UsageError(`a limit must be a whole number >= 1, got ${String(limit)}`)
    }
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
    const nodes = (await this.peers()).filter(p => p.state !== 'unreachable').map(p => ({ id: p.id, slots: p.slots, running: p.running }))
    return {
      ...jobCounts(this.init.table), throughput: this.init.throughput.perSecond(), nodes, coordination: this.init.scheduler.coordination()
    }
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
      id: i.id,
      by: i.by,
      createdAt: new Date(i.createdAt).toISOString(),
      expiresAt: new Date(i.expiresAt).toISOString(),
      uses: i.uses,
      used: i.used,
      revoked: i.revoked,
      expired: i.expired
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

  /** Events of every change of a job; a change of an array's task also tells the array's new record. */
  subscribe (listener: (event: NodeEvent) => void): () => void {
    const tellArray = (id: JobId): void => {
      const array = this.arrayView(id)
      listener(array == null ? { type: 'removed', id } : { type: 'job', job: array })
    }
    const stops = [
      this.init.table.onChange((_, entry) => {
        const { id, arrayId } = entry.facts.spec
        listener(entry.derived.removed ? { type: 'removed', id } : { type: 'job', job: this.view(entry) })
        if (arrayId != null) tellArray(arrayId)
      }),
      this.init.table.onUntouchedChange(tellArray)
    ]
    return () => { for (const stop of stops) stop() }
  }

  jobEvents (query: EventQuery): JobEvent[] {
    return this.events.history(query)
  }

  subscribeJobEvents (listener: (event: JobEvent) => void): () => void {
    return this.events.subscribe(listener)
  }

  readLog (id: string, stream: LogStream, options: { follow: boolean, signal: AbortSignal }): AsyncIterable<Uint8Array> {
    return this.init.logs.read(id, stream, options)
  }

  private eventFacts (entry: TableEntry): EventFacts {
    const { spec, controls, attempts } = entry.facts
    return eventFacts(this.view(entry), {
      submitter: spec.submitter,
      controls: controls.values(),
      basis: (epoch, node) => attempts.get(attemptKey(spec.id, epoch, node))?.basis ?? 0
    })
  }

  /** An array's record as clients see it, while its spec is in memory. */
  arrayView (id: JobId): JobView | undefined {
    return arrayView(this.init.table, id, spec => this.init.scheduler.readyReason(spec))
  }

  /** A job's record as clients see it. */
  view (entry: TableEntry): JobView {
    return toJobView(entry, spec => this.init.scheduler.readyReason(spec))
  }

  /** The jobs a selector names, once this node has caught up with the other members (see `selectJobs`). */
  private async select (
    selector: Selector, wanted: (job: SealedJob) => boolean, unwanted: 'refuse' | 'skip' = 'refuse'
  ): Promise<TableEntry[]> {
    await this.catchUpFor(selector)
    return await selectJobs(this.init, selector, wanted, unwanted)
  }

  /**
   * The entries a selector names one by one: a request about them that cannot apply is an error
   * (for a group's or an array's, they are left out).
   */
  private named (selector: Selector, entries: TableEntry[]): TableEntry[] {
    const ids = new Set(selector.ids ?? [])
    return entries.filter(e => ids.has(e.facts.spec.id))
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
  private async putGroupFact (
    map: typeof MetaMap.pauses | typeof MetaMap.limits,
    group: string,
    stamp: number,
    fact: Omit<PauseFact, keyof GroupFact> | Omit<LimitFact, keyof GroupFact>
  ): Promise<void> {
    const { ledger, self } = this.init
    const lamport = stamp + 1
    const value = { ...fact, lamport, by: self }
    await ledger.put([{ doc: META_DOC, map, key: groupFactKey(group, lamport, self), value }], { sync: true })
  }
}
