import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { ControlKind, JobState, isTerminal } from '../types.js'
import type { JobId, JobView, NodeEvent, NodeStatus, PeerIdString, PeerView, StatsView, SubmitRequest } from '../types.js'
import type { Engine, ListQuery, LogStream, Selector } from '../api/engine.js'
import { DependencyCycleError, InvalidJobError, JobNotFoundError, JobRunningError, MissingDependencyError, UsageError } from '../errors.js'
import type { Clock } from '../clock.js'
import type { Ledger } from '../crdt/ledger.js'
import { META_DOC, MetaMap, SegmentMap, attemptKey, controlKey, pauseKey, segmentOf } from '../crdt/facts.js'
import type { FactChange, PauseFact } from '../crdt/facts.js'
import type { JobTable, TableEntry } from '../sched/table.js'
import type { Scheduler } from '../sched/scheduler.js'
import { toJobView } from '../sched/view.js'
import { dependsOnGroup, draftJob } from '../sched/submit.js'
import type { JobDraft } from '../sched/submit.js'

export interface EngineInit {
  self: PeerIdString
  clusterId: string
  home: string
  version: string
  tags: string[]
  clock: Clock
  ledger: Ledger
  table: JobTable
  scheduler: Scheduler
  /** Called when `drain` of this node has finished its running jobs. */
  onDrained: () => void
}

/** How often a followed log is checked for new output. */
const LOG_POLL_MS = 100
/** Window for the throughput figure of `stats`. */
const THROUGHPUT_WINDOW_MS = 60_000

/** The node as the control API serves it: reads from the job table, writes facts to the ledger. */
export class NodeEngine implements Engine {
  private readonly init: EngineInit
  private readonly finishedAt: number[] = []

  constructor (init: EngineInit) {
    this.init = init
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
    const drafts = requests.map((req, i) => withIndex(i, requests.length, () => draftJob(req, now)))
    const results: Array<JobId | undefined> = drafts.map(d => d.key != null ? table.byKey(d.key) : undefined)
    const fresh = drafts.map((d, i) => ({ draft: d, i })).filter(({ i }) => results[i] == null)
    fresh.forEach(({ draft, i }) => withIndex(i, requests.length, () => this.checkDependencies(draft, drafts)))
    const ids = await ledger.allocateJobIds(fresh.length)
    const facts: FactChange[] = fresh.map(({ draft, i }, k) => {
      results[i] = ids[k]
      const n = Number(ids[k].slice(ids[k].lastIndexOf('-') + 1))
      return { doc: segmentOf(ids[k]) as string, map: SegmentMap.jobs, key: ids[k], value: { ...draft, id: ids[k], n, submitter: self, submittedAt: now } }
    })
    await ledger.put(facts, { sync: true })
    return results.map(id => this.view(table.get(id as JobId) as TableEntry))
  }

  async list (query: ListQuery): Promise<JobView[]> {
    const { table } = this.init
    const rows: TableEntry[] = []
    for (const [, entry] of table.all()) {
      if (query.state != null && entry.derived.state !== query.state) continue
      if (query.group != null && entry.facts.spec.group !== query.group) continue
      rows.push(entry)
    }
    rows.sort((a, b) => b.facts.spec.submittedAt - a.facts.spec.submittedAt || (b.facts.spec.id < a.facts.spec.id ? -1 : 1))
    return rows.slice(0, query.limit ?? rows.length).map(e => this.view(e))
  }

  async get (id: string): Promise<JobView> {
    return this.view(this.entry(id))
  }

  async kill (selector: Selector): Promise<JobView[]> {
    const targets = this.select(selector).filter(e => !isTerminal(e.derived.state))
    await this.control(targets, ControlKind.kill)
    return targets.map(e => this.view(e))
  }

  async retry (selector: Selector): Promise<JobView[]> {
    const selected = this.select(selector)
    const retriable = (e: TableEntry): boolean => e.derived.state === JobState.failed || e.derived.state === JobState.killed
    if (selector.ids != null) {
      const bad = selected.find(e => !retriable(e))
      if (bad != null) throw new InvalidJobError(`job ${bad.facts.spec.id} is ${bad.derived.state}: only failed or killed jobs can be retried`)
    }
    const targets = selected.filter(retriable)
    await this.control(targets, ControlKind.retry)
    return targets.map(e => this.view(e))
  }

  async remove (selector: Selector): Promise<JobId[]> {
    const targets = this.select(selector)
    const running = targets.find(e => e.derived.state === JobState.running)
    if (running != null) throw new JobRunningError(`job ${running.facts.spec.id} is running: kill it first`)
    await this.control(targets, ControlKind.remove)
    return targets.map(e => e.facts.spec.id)
  }

  async pause (group: string, forMs?: number): Promise<void> {
    await this.putPause(group, { paused: true, until: forMs != null ? this.init.clock.now() + forMs : undefined })
  }

  async resume (group: string): Promise<void> {
    await this.putPause(group, { paused: false })
  }

  async drain (peer?: string): Promise<void> {
    if (peer != null && peer !== this.init.self) throw new UsageError(`unknown peer ${peer}`)
    void this.init.scheduler.drain().then(() => this.init.onDrained())
  }

  async stats (): Promise<StatsView> {
    const states = Object.fromEntries(Object.values(JobState).map(s => [s, 0])) as Record<JobState, number>
    const groups: StatsView['groups'] = {}
    for (const [, entry] of this.init.table.all()) {
      const { state } = entry.derived
      states[state]++
      const group = entry.facts.spec.group
      if (group != null) {
        const counts = groups[group] ??= {}
        counts[state] = (counts[state] ?? 0) + 1
      }
    }
    const since = this.init.clock.now() - THROUGHPUT_WINDOW_MS
    while (this.finishedAt.length > 0 && this.finishedAt[0] < since) this.finishedAt.shift()
    const { self, scheduler } = this.init
    return { states, groups, throughput: this.finishedAt.length / (THROUGHPUT_WINDOW_MS / 1000), nodes: [{ id: self, slots: scheduler.slots, running: scheduler.running }] }
  }

  async peers (): Promise<PeerView[]> {
    const { self, scheduler, tags } = this.init
    return [{ id: self, addrs: [], self: true, connected: true, state: scheduler.isDraining ? 'draining' : 'up', slots: scheduler.slots, running: scheduler.running, tags }]
  }

  subscribe (listener: (event: NodeEvent) => void): () => void {
    return this.init.table.onChange((_, entry) => {
      listener(entry.derived.removed ? { type: 'removed', id: entry.facts.spec.id } : { type: 'job', job: this.view(entry) })
    })
  }

  async * readLog (id: string, stream: LogStream, options: { follow: boolean, signal: AbortSignal }): AsyncIterable<Uint8Array> {
    const entry = this.entry(id)
    const attempt = entry.derived.attempt
    if (attempt == null || attempt.startedAt == null) return
    if (attempt.node !== this.init.self) throw new InvalidJobError(`job ${id} ran on ${attempt.node}: its output is on that node`)
    const file = await open(join(this.init.home, 'output', entry.facts.spec.id, `${attempt.epoch}.${stream}`), 'r').catch(() => undefined)
    if (file == null) return
    try {
      const buffer = Buffer.alloc(64 * 1024)
      let position = 0
      while (!options.signal.aborted) {
        const ended = this.entry(id).facts.attempts.get(attemptKey(attempt.job, attempt.epoch, attempt.node))?.endedAt != null
        const { bytesRead } = await file.read(buffer, 0, buffer.length, position)
        if (bytesRead > 0) {
          position += bytesRead
          yield buffer.subarray(0, bytesRead)
          continue
        }
        if (!options.follow || ended) return
        await new Promise(resolve => setTimeout(resolve, LOG_POLL_MS))
      }
    } finally {
      await file.close()
    }
  }

  private view (entry: TableEntry): JobView {
    return toJobView(entry, spec => this.init.scheduler.readyReason(spec))
  }

  private entry (id: string): TableEntry {
    const entry = this.init.table.get(id)
    if (entry == null) throw new JobNotFoundError(`no job ${id}`)
    return entry
  }

  private select (selector: Selector): TableEntry[] {
    if (selector.group != null) return this.init.table.groupJobs(selector.group).map(id => this.init.table.get(id)).filter(e => e != null)
    if (selector.ids == null || selector.ids.length === 0) throw new UsageError('give job ids or a group')
    return selector.ids.map(id => this.entry(id))
  }

  private checkDependencies (draft: JobDraft, batch: JobDraft[]): void {
    const { table } = this.init
    if (draft.allowMissing !== true) {
      const missing = draft.after.find(dep => table.get(dep) == null)
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
    if (dependsOnGroup(graph, draft.group, draft.after, draft.afterGroup)) {
      throw new DependencyCycleError(`dependency cycle: the job would wait for its own group ${draft.group}`)
    }
  }

  private async control (targets: TableEntry[], kind: ControlKind): Promise<void> {
    const { clock, ledger, self } = this.init
    const facts = targets.map(e => {
      const lamport = e.derived.lamport + 1
      const id = e.facts.spec.id
      return { doc: segmentOf(id) as string, map: SegmentMap.controls, key: controlKey(id, lamport, self), value: { kind, lamport, by: self, at: clock.now() } }
    })
    await ledger.put(facts, { sync: true })
  }

  private async putPause (group: string, fact: Pick<PauseFact, 'paused' | 'until'>): Promise<void> {
    const { ledger, table, self } = this.init
    const lamport = table.pauseStamp(group) + 1
    await ledger.put([{ doc: META_DOC, map: MetaMap.pauses, key: pauseKey(group, lamport, self), value: { ...fact, lamport, by: self } }], { sync: true })
  }
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
