/**
 * The control API as typed methods, named and shaped as the `Engine` methods they reach on the
 * node: the CLI and the dashboard call these, and every URL comes from the route table.
 */
import type {
  GcResult, InviteCreated, InviteView, JobEvent, JobEventKind, JobId, JobStateView, JobView, LimitView, ModifyRequest, NodeEvent,
  NodeStatus, PeerView, StatsView, SubmitRequest
} from '../types.js'
import type { ApiClient } from './client.js'
import type { Engine, ListQuery, LogStream, Selector } from './engine.js'
import { ROUTES, routePath, type JsonRouteName, type QueryValues, type RouteAnswers, type RouteName, type RouteParams } from './routes.js'

/** What the typed client sends its calls through: the API client, or a test's fake of it. */
export type ApiTransport = Pick<ApiClient, 'request' | 'stream' | 'openLines' | 'openEvents' | 'describe'>

/** An engine method called over HTTP: asynchronous, with an optional signal to abandon it. */
type Remote<F> = F extends (...args: infer A) => infer R ? (...args: [...A, signal?: AbortSignal]) => Promise<Awaited<R>> : never

/**
 * The engine methods that the client mirrors one to one. The others: `remove` answers ids (and
 * `removeRecords` the records), and the streams (events, job events, output) are iterables.
 */
type Mirrored = Exclude<keyof Engine, 'remove' | 'subscribe' | 'jobEvents' | 'subscribeJobEvents' | 'readLog'>

/** The compiler checks that the client keeps the engine's names, arguments and answers. */
export type RemoteEngine = { [K in Mirrored]: Remote<Engine[K]> }

/** A call's path parameters (required where its route has some), query and body. */
type CallParts<N extends RouteName> = { query?: QueryValues, body?: object } &
  (keyof RouteParams<N> extends never ? { params?: undefined } : { params: RouteParams<N> })

/** `meshq events`: past events (at most `limit`, the node's default without it), then with `follow` new ones. */
export interface JobEventsQuery {
  kinds: JobEventKind[]
  limit?: number
  follow: boolean
}

export class NodeClient implements RemoteEngine {
  private readonly transport: ApiTransport

  constructor (transport: ApiTransport) {
    this.transport = transport
  }

  /** Where the node is, for messages. */
  describe (): string {
    return this.transport.describe()
  }

  async status (signal?: AbortSignal): Promise<NodeStatus> {
    return await this.call('status', {}, signal)
  }

  async submit (jobs: SubmitRequest[], signal?: AbortSignal): Promise<JobView[]> {
    return (await this.call('submit', { body: { jobs } }, signal)).jobs
  }

  async list (query: ListQuery, signal?: AbortSignal): Promise<JobView[]> {
    return (await this.call('list', { query: { ...query } }, signal)).jobs
  }

  /** The raw bytes of the `{"jobs": [...]}` answer of `list`, to parse as it arrives (the dashboard). */
  listBytes (query: ListQuery, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    return this.transport.stream(routePath('list', {}, { ...query }), signal)
  }

  async get (id: string, signal?: AbortSignal): Promise<JobView> {
    return await this.call('get', { params: { id } }, signal)
  }

  async states (ids: string[], signal?: AbortSignal): Promise<JobStateView[]> {
    return (await this.call('states', { body: { ids } }, signal)).jobs
  }

  async catchUp (signal?: AbortSignal): Promise<{ unreachable: string[] }> {
    return await this.call('catchUp', {}, signal)
  }

  async kill (selector: Selector, signal?: AbortSignal): Promise<JobView[]> {
    return (await this.call('kill', { body: selector }, signal)).jobs
  }

  async retry (selector: Selector, signal?: AbortSignal): Promise<JobView[]> {
    return (await this.call('retry', { body: selector }, signal)).jobs
  }

  /** Resolves to the removed jobs' ids; `removeRecords` to their records. */
  async remove (selector: Selector, signal?: AbortSignal): Promise<JobId[]> {
    return (await this.call('remove', { body: selector }, signal)).ids
  }

  async removeRecords (selector: Selector, signal?: AbortSignal): Promise<JobView[]> {
    return (await this.call('remove', { body: { ...selector, records: true } }, signal)).jobs ?? []
  }

  async modify (selector: Selector, change: ModifyRequest, signal?: AbortSignal): Promise<JobView[]> {
    return (await this.call('modify', { body: { ...selector, change } }, signal)).jobs
  }

  async pause (group: string, forMs?: number, signal?: AbortSignal): Promise<void> {
    await this.call('pause', { params: { group }, body: { forMs } }, signal)
  }

  async resume (group: string, signal?: AbortSignal): Promise<void> {
    await this.call('resume', { params: { group } }, signal)
  }

  async limit (group: string, limit: number | null, signal?: AbortSignal): Promise<void> {
    await this.call('limit', { params: { group }, body: { limit } }, signal)
  }

  async limits (signal?: AbortSignal): Promise<LimitView[]> {
    return (await this.call('limits', {}, signal)).limits
  }

  async gc (olderThanMs: number, dryRun: boolean, signal?: AbortSignal): Promise<GcResult> {
    return await this.call('gc', { body: { olderThanMs, dryRun } }, signal)
  }

  async drain (peer?: string, signal?: AbortSignal): Promise<void> {
    await this.call('drain', { body: { peer } }, signal)
  }

  async stats (signal?: AbortSignal): Promise<StatsView> {
    return await this.call('stats', {}, signal)
  }

  async peers (signal?: AbortSignal): Promise<PeerView[]> {
    return (await this.call('peers', {}, signal)).peers
  }

  async invite (options: { ttlMs: number, uses: number }, signal?: AbortSignal): Promise<InviteCreated> {
    return await this.call('invite', { body: options }, signal)
  }

  async invites (signal?: AbortSignal): Promise<InviteView[]> {
    return (await this.call('invites', {}, signal)).invites
  }

  async revokeInvite (id: string, signal?: AbortSignal): Promise<void> {
    await this.call('revokeInvite', { params: { id } }, signal)
  }

  async evict (peer: string, signal?: AbortSignal): Promise<void> {
    await this.call('evict', { params: { id: peer } }, signal)
  }

  async connect (addr: string, signal?: AbortSignal): Promise<{ peer: string }> {
    return await this.call('connect', { body: { addr } }, signal)
  }

  /** The node's events, subscribed once this resolves: every later change is in the iterable. */
  async openEvents (signal?: AbortSignal): Promise<AsyncIterable<NodeEvent>> {
    return await this.transport.openEvents(signal)
  }

  async * jobEvents (query: JobEventsQuery, signal?: AbortSignal): AsyncIterable<JobEvent> {
    const kinds = query.kinds.length > 0 ? query.kinds.join(',') : undefined
    const path = routePath('jobEvents', {}, { limit: query.limit, kinds, follow: query.follow })
    yield * await this.transport.openLines<JobEvent>(path, signal)
  }

  /** The job's output; with `follow`, until its attempt ends. */
  readLog (id: string, stream: LogStream, options: { follow: boolean, signal?: AbortSignal }): AsyncIterable<Uint8Array> {
    return this.transport.stream(routePath('readLog', { id }, { stream, follow: options.follow }), options.signal)
  }

  private async call<N extends JsonRouteName> (name: N, parts: CallParts<N>, signal?: AbortSignal): Promise<RouteAnswers[N]> {
    const { method } = ROUTES[name]
    const path = routePath(name, (parts.params ?? {}) as RouteParams<N>, parts.query)
    // a POST always has a body: `{}` when it says nothing more than its path
    return await this.transport.request<RouteAnswers[N]>(method, path, method === 'GET' ? undefined : parts.body ?? {}, signal)
  }
}
