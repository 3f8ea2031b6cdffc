/**
 * An in-memory Engine for the control API and CLI tests, with knobs to move jobs along.
 */
import { JobNotFoundError, InvalidJobError } from '../src/errors.js'
import type { Engine, ListQuery, LogStream, Selector } from '../src/api/engine.js'
import type { JobEvent, JobId, JobStateView, JobView, NodeEvent, NodeStatus, PeerIdString, PeerView, StatsView, SubmitRequest, InviteCreated, InviteView, LimitView, ModifyRequest, GcResult } from '../src/types.js'
import { JOB_STATES } from '../src/types.js'

const SELF = '12D3KooWFakeSelf' as PeerIdString

interface Log { stdout: Buffer[], stderr: Buffer[], ended: boolean }

const NO_TRAFFIC = { batches: 0, claims: 0, claimsWon: 0, claimsLost: 0, votes: 0, renewals: 0, acks: 0 }

export class FakeEngine implements Engine {
  readonly jobs = new Map<string, JobView>()
  readonly logs = new Map<string, Log>()
  readonly listeners = new Set<(event: NodeEvent) => void>()
  readonly calls: Array<{ method: string, args: unknown[] }> = []
  /** Log readers currently open, and how many readers saw their signal aborted. */
  openReaders = 0
  /** How many times `subscribe` was called. */
  subscriptions = 0
  abortedReaders = 0
  /** The next call of `submit` throws this. */
  failNext: Error | undefined
  private seq = 0
  private wakers: Array<() => void> = []

  status (): NodeStatus {
    return { id: SELF, clusterId: 'c1', home: '/fake', slots: 4, running: 0, draining: false, tags: [], version: 'test' }
  }

  async submit (requests: SubmitRequest[]): Promise<JobView[]> {
    if (this.failNext !== undefined) {
      const err = this.failNext
      this.failNext = undefined
      throw err
    }
    for (const r of requests) if (!Array.isArray(r.cmd) || r.cmd.length === 0) throw new InvalidJobError('cmd must be a non-empty array')
    return requests.map(r => {
      const id = `j${++this.seq}` as JobId
      const list = (v: string[] | string | undefined): string[] => v === undefined ? [] : Array.isArray(v) ? v : [v]
      const job: JobView = {
        id,
        name: r.name,
        cmd: r.cmd,
        cwd: r.cwd ?? '/',
        group: r.group,
        after: list(r.after) as JobId[],
        afterGroup: list(r.afterGroup),
        pri: r.pri ?? 0,
        retries: r.retries ?? 0,
        ttrMs: typeof r.ttr === 'number' ? r.ttr : 30_000,
        tags: list(r.tag),
        cores: r.cores ?? 1,
        env: r.env ?? {},
        state: 'ready',
        submittedAt: new Date(Date.now() + this.seq).toISOString(),
        attempts: []
      }
      this.jobs.set(id, job)
      this.logs.set(id, { stdout: [], stderr: [], ended: false })
      this.emit({ type: 'job', job })
      return job
    })
  }

  async list (query: ListQuery): Promise<JobView[]> {
    this.calls.push({ method: 'list', args: [query] })
    const jobs = [...this.jobs.values()]
      .filter(j => (query.state === undefined || j.state === query.state) && (query.group === undefined || j.group === query.group))
      .reverse()
    return query.limit === undefined ? jobs : jobs.slice(0, query.limit)
  }

  async catchUp (): Promise<{ unreachable: string[] }> {
    return { unreachable: [] }
  }

  async get (id: string): Promise<JobView> {
    const job = this.jobs.get(id)
    if (job === undefined) throw new JobNotFoundError(`no such job: ${id}`)
    return job
  }

  async states (ids: string[]): Promise<JobStateView[]> {
    this.calls.push({ method: 'states', args: [ids] })
    return await Promise.all(ids.map(async id => ({ id: id as JobId, state: (await this.get(id)).state })))
  }

  private async select (selector: Selector): Promise<JobView[]> {
    const ids = selector.ids ?? [...this.jobs.values()].filter(j => j.group === selector.group).map(j => j.id)
    return await Promise.all(ids.map(async id => await this.get(id)))
  }

  async kill (selector: Selector): Promise<JobView[]> {
    return (await this.select(selector)).map(j => this.set(j.id, { state: 'killed', reason: 'killed' }))
  }

  async retry (selector: Selector): Promise<JobView[]> {
    return (await this.select(selector)).map(j => this.set(j.id, { state: 'ready' }))
  }

  async remove (selector: Selector): Promise<JobView[]> {
    return (await this.select(selector)).map(j => {
      this.jobs.delete(j.id)
      this.emit({ type: 'removed', id: j.id })
      return j
    })
  }

  async pause (group: string, forMs?: number): Promise<void> { this.calls.push({ method: 'pause', args: [group, forMs] }) }
  async resume (group: string): Promise<void> { this.calls.push({ method: 'resume', args: [group] }) }
  async drain (peer?: string): Promise<void> { this.calls.push({ method: 'drain', args: [peer] }) }
  async limit (group: string, limit: number | null): Promise<void> { this.calls.push({ method: 'limit', args: [group, limit] }) }
  async limits (): Promise<LimitView[]> { return [] }
  async gc (olderThanMs: number, dryRun: boolean): Promise<GcResult> {
    this.calls.push({ method: 'gc', args: [olderThanMs, dryRun] })
    return { segments: [], jobs: 0, dryRun }
  }
  async modify (selector: Selector, change: ModifyRequest): Promise<JobView[]> {
    this.calls.push({ method: 'modify', args: [selector, change] })
    return []
  }

  async stats (): Promise<StatsView> {
    const states = Object.fromEntries(JOB_STATES.map(s => [s, 0])) as StatsView['states']
    for (const job of this.jobs.values()) states[job.state]++
    return { states, groups: {}, throughput: 0, nodes: [{ id: SELF, slots: 4, running: states.running }], coordination: NO_TRAFFIC }
  }

  async invite (options: { ttlMs: number, uses: number }): Promise<InviteCreated> {
    return { id: 'inv1', token: `mq1.fake-${options.uses}`, expiresAt: new Date(Date.now() + options.ttlMs).toISOString() }
  }

  async invites (): Promise<InviteView[]> {
    return []
  }

  async revokeInvite (): Promise<void> {}

  async evict (): Promise<void> {}

  async connect (): Promise<{ peer: string }> {
    return { peer: SELF }
  }

  async peers (): Promise<PeerView[]> {
    return [{ id: SELF, addrs: ['/ip4/127.0.0.1/tcp/1'], self: true, connected: true, state: 'up', slots: 4, running: 0, tags: ['gpu'] }]
  }

  jobEvents (): JobEvent[] { return [] }
  subscribeJobEvents (): () => void { return () => {} }

  subscribe (listener: (event: NodeEvent) => void): () => void {
    this.subscriptions++
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /** Like the node: nothing for a job that has not started; with `follow`, waits for the end of the log. */
  async * readLog (id: string, stream: LogStream, options: { follow: boolean, signal: AbortSignal }): AsyncIterable<Uint8Array> {
    const job = await this.get(id)
    if (job.attempts.length === 0) return
    const log = this.logs.get(id) as Log
    this.openReaders++
    try {
      let i = 0
      while (!options.signal.aborted) {
        if (i < log[stream].length) {
          yield log[stream][i++]
          continue
        }
        if (!options.follow || log.ended) return
        await new Promise<void>(resolve => {
          this.wakers.push(resolve)
          options.signal.addEventListener('abort', () => resolve(), { once: true })
        })
      }
      this.abortedReaders++
    } finally {
      this.openReaders--
    }
  }

  // Test knobs.

  /** Changes a job and tells the subscribers. */
  set (id: string, patch: Partial<JobView>): JobView {
    const job = { ...(this.jobs.get(id) as JobView), ...patch }
    this.jobs.set(id, job)
    this.emit({ type: 'job', job })
    return job
  }

  /** Starts attempt `epoch` of a job. */
  start (id: string, epoch = 1): JobView {
    const now = new Date().toISOString()
    const job = this.jobs.get(id) as JobView
    const attempts = [...job.attempts, { epoch, node: SELF, claimedAt: now, startedAt: now }]
    return this.set(id, { state: 'running', node: SELF, startedAt: now, attempts })
  }

  /** Ends the running attempt. */
  finish (id: string, state: 'done' | 'failed' | 'killed', exitCode?: number, reason?: string): JobView {
    const now = new Date().toISOString()
    const job = this.jobs.get(id) as JobView
    const attempts = job.attempts.map((a, i) => i === job.attempts.length - 1 ? { ...a, endedAt: now, exitCode } : a)
    const log = this.logs.get(id)
    if (log !== undefined) log.ended = true
    this.wake()
    return this.set(id, { state, exitCode, reason, endedAt: now, attempts })
  }

  write (id: string, stream: LogStream, text: string): void {
    this.logs.get(id)?.[stream].push(Buffer.from(text))
    this.wake()
  }

  private emit (event: NodeEvent): void {
    for (const listener of this.listeners) listener(event)
  }

  private wake (): void {
    const wakers = this.wakers
    this.wakers = []
    for (const wake of wakers) wake()
  }
}

/** Polls `condition` until it holds; fails after `ms`. */
export async function until (condition: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}
