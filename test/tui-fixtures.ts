/** Jobs, peers and a fake API client for the dashboard's tests. */
import { ApiError } from '../src/api/client.js'
import { NodeClient, type ApiTransport } from '../src/api/node-client.js'
import type { JobId, JobState, JobView, NodeEvent, NodeStatus, PeerIdString, PeerView, StatsView } from '../src/types.js'

export const SELF = '12D3KooWSelfSelfSelfSelfSelfSelfSelfSelfSelfSelfAAAAAA' as PeerIdString
export const OTHER = '12D3KooWOtherOtherOtherOtherOtherOtherOtherOtherBBBBBB' as PeerIdString
const T0 = Date.UTC(2026, 0, 1, 12, 0, 0)

/** Job `seg-n`, submitted n seconds after T0 (so higher n is newer). */
export function job (n: number, overrides: Partial<JobView> = {}): JobView {
  return {
    id: `seg-${n}` as JobId,
    cmd: ['echo', `job ${n}`],
    cwd: '/tmp',
    after: [],
    afterGroup: [],
    pri: 0,
    retries: 0,
    ttrMs: 30_000,
    tags: [],
    cores: 1,
    env: {},
    state: 'done',
    submittedAt: new Date(T0 + n * 1000).toISOString(),
    attempts: [],
    ...overrides
  }
}

export function running (n: number, overrides: Partial<JobView> = {}): JobView {
  const startedAt = new Date(T0 + n * 1000 + 500).toISOString()
  return job(n, {
    state: 'running',
    node: SELF,
    startedAt,
    attempts: [{ epoch: 1, node: SELF, claimedAt: startedAt, startedAt }],
    ...overrides
  })
}

export const STATUS: NodeStatus = {
  id: SELF, clusterId: 'c0ffee0123456789', home: '/tmp/h', slots: 4, running: 1, draining: false, tags: [], version: '0.1.0'
}

export const PEERS: PeerView[] = [
  { id: OTHER, addrs: ['/ip4/10.0.0.2/tcp/7746'], self: false, connected: true, state: 'up', slots: 8, running: 0, tags: ['gpu'] },
  { id: SELF, addrs: ['/ip4/10.0.0.1/tcp/7746'], self: true, connected: true, state: 'up', slots: 4, running: 1, tags: [] }
]

export function stats (states: Partial<Record<JobState, number>> = {}): StatsView {
  return {
    states: { pending: 0, ready: 0, running: 0, done: 0, failed: 0, killed: 0, ...states },
    groups: {},
    throughput: 1.5,
    nodes: [{ id: SELF, slots: 4, running: 1 }, { id: OTHER, slots: 8, running: 0 }],
    coordination: { batches: 0, claims: 0, claimsWon: 0, claimsLost: 0, votes: 0, renewals: 0, acks: 0 }
  }
}

/** An async iterable fed by `push`, ended by `end`. */
export class Channel<T> implements AsyncIterable<T> {
  private readonly queue: T[] = []
  private wake?: () => void
  private ended = false

  push (value: T): void {
    this.queue.push(value)
    this.wake?.()
  }

  end (): void {
    this.ended = true
    this.wake?.()
  }

  async * [Symbol.asyncIterator] (): AsyncIterator<T> {
    for (;;) {
      const value = this.queue.shift()
      if (value !== undefined) {
        yield value
      } else if (this.ended) {
        return
      } else {
        await new Promise<void>(resolve => { this.wake = resolve })
      }
    }
  }
}

export interface Call {
  method: string
  path: string
  body?: unknown
}

/**
 * A fake node behind the API transport: canned answers, an event stream the test pushes into, log
 * streams per job, and every request recorded (its real path, as the typed client `api` built it).
 * `down` makes every call fail as if the node were gone.
 */
export class FakeClient implements ApiTransport {
  jobs: JobView[]
  calls: Call[] = []
  events = new Channel<NodeEvent>()
  logs = new Map<string, Channel<Uint8Array>>()
  down = false
  statsView = stats({ running: 1, done: 2 })
  answers = new Map<string, unknown>()
  /** Holds back the answer of the full list (`GET /jobs`) until it resolves. */
  fullList: Promise<void> = Promise.resolve()

  constructor (jobs: JobView[]) {
    this.jobs = jobs
  }

  /** The typed client the dashboard is given, speaking through this fake. */
  get api (): NodeClient {
    return new NodeClient(this)
  }

  describe (): string {
    return 'a fake node'
  }

  log (id: string): Channel<Uint8Array> {
    let channel = this.logs.get(id)
    if (channel === undefined) this.logs.set(id, channel = new Channel())
    return channel
  }

  private check (): void {
    if (this.down) throw Object.assign(new Error('cannot reach the meshq node'), { name: 'NodeUnreachableError' })
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    this.check()
    this.calls.push({ method, path, body })
    const key = `${method} ${path}`
    if (this.answers.has(key)) {
      const answer = this.answers.get(key)
      if (answer instanceof Error) throw answer
      return answer as T
    }
    if (key === 'GET /status') return STATUS as T
    if (key === 'GET /stats') return this.statsView as T
    if (key === 'GET /peers') return { peers: PEERS } as T
    const limit = /^GET \/jobs\?limit=(\d+)$/.exec(key)?.[1]
    if (limit !== undefined) return { jobs: this.jobs.slice(0, Number(limit)) } as T
    const id = /^GET \/jobs\/([^/?]+)$/.exec(key)?.[1]
    if (id !== undefined) return this.job(decodeURIComponent(id)) as T
    if (key === 'POST /jobs') return { jobs: [job(999)] } as T
    if (key === 'POST /jobs/kill' || key === 'POST /jobs/retry') return { jobs: [job(1)] } as T
    return { ok: true } as T
  }

  private job (id: string): JobView {
    const found = this.jobs.find(j => j.id === id)
    if (found === undefined) throw new ApiError('NotFoundError', `no job ${id}`, 404)
    return found
  }

  async * stream (path: string, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    this.check()
    this.calls.push({ method: 'GET', path })
    if (path === '/jobs') {
      await this.fullList
      // in three pieces, cut anywhere, as a socket would
      const bytes = new TextEncoder().encode(JSON.stringify({ jobs: this.jobs }))
      const third = Math.ceil(bytes.length / 3)
      for (let at = 0; at < bytes.length; at += third) yield bytes.subarray(at, at + third)
      return
    }
    const id = decodeURIComponent(/\/jobs\/([^/]+)\/logs/.exec(path)?.[1] ?? '')
    const channel = this.log(id)
    const aborted = new Promise<void>(resolve => signal?.addEventListener('abort', () => resolve(), { once: true }))
    const iterator = channel[Symbol.asyncIterator]()
    for (;;) {
      const next = await Promise.race([iterator.next(), aborted.then(() => undefined)])
      if (next === undefined || next.done === true) return
      yield next.value
    }
  }

  async openEvents (): Promise<AsyncIterable<NodeEvent>> {
    this.check()
    this.calls.push({ method: 'GET', path: '/events' })
    return this.events
  }

  async openLines<T> (path: string): Promise<AsyncIterable<T>> {
    throw new Error(`the dashboard reads no other NDJSON stream (asked for ${path})`)
  }
}
