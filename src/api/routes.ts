/**
 * Every route of the control API, once: the server matches requests against this table and the
 * client builds its URLs from it. Dependency-free: the CLI imports it.
 */
import type {
  GcResult, InviteCreated, InviteView, JobId, JobStateView, JobView, LimitView, NodeStatus, PeerView, StatsView
} from '../types.js'
import { API_PREFIX } from './protocol.js'

export interface RouteSpec {
  readonly method: 'GET' | 'POST'
  /** Relative to `/v1`; a `:name` segment is one URL-encoded path parameter. */
  readonly path: string
}

/**
 * Named as the `Engine` methods they call. In matching order: a fixed path (`/jobs/kill`) comes
 * before the parameter that would also match it (`/jobs/:id`).
 */
export const ROUTES = {
  status: { method: 'GET', path: '/status' },
  submit: { method: 'POST', path: '/jobs' },
  list: { method: 'GET', path: '/jobs' },
  kill: { method: 'POST', path: '/jobs/kill' },
  retry: { method: 'POST', path: '/jobs/retry' },
  remove: { method: 'POST', path: '/jobs/rm' },
  modify: { method: 'POST', path: '/jobs/mod' },
  states: { method: 'POST', path: '/jobs/states' },
  get: { method: 'GET', path: '/jobs/:id' },
  catchUp: { method: 'POST', path: '/catch-up' },
  readLog: { method: 'GET', path: '/jobs/:id/logs' },
  pause: { method: 'POST', path: '/groups/:group/pause' },
  resume: { method: 'POST', path: '/groups/:group/resume' },
  limit: { method: 'POST', path: '/groups/:group/limit' },
  limits: { method: 'GET', path: '/limits' },
  gc: { method: 'POST', path: '/gc' },
  drain: { method: 'POST', path: '/drain' },
  stats: { method: 'GET', path: '/stats' },
  peers: { method: 'GET', path: '/peers' },
  evict: { method: 'POST', path: '/peers/:id/evict' },
  connect: { method: 'POST', path: '/peers/connect' },
  invite: { method: 'POST', path: '/invites' },
  invites: { method: 'GET', path: '/invites' },
  revokeInvite: { method: 'POST', path: '/invites/:id/revoke' },
  events: { method: 'GET', path: '/events' },
  jobEvents: { method: 'GET', path: '/job-events' }
} as const satisfies Record<string, RouteSpec>

export type RouteName = keyof typeof ROUTES

/** The routes that answer a stream (bytes, or one JSON object per line) instead of one JSON value. */
export type StreamRouteName = 'readLog' | 'events' | 'jobEvents'

type Ok = { ok: true }

/** What each JSON route answers (one missing does not compile): the server's handlers return it, the client reads it. */
export interface RouteAnswers {
  status: NodeStatus
  submit: { jobs: JobView[] }
  list: { jobs: JobView[] }
  kill: { jobs: JobView[] }
  retry: { jobs: JobView[] }
  /** The records only when the request says `"records": true` (`rm --json`). */
  remove: { ids: JobId[], jobs?: JobView[] }
  modify: { jobs: JobView[] }
  states: { jobs: JobStateView[] }
  get: JobView
  catchUp: { unreachable: string[] }
  pause: Ok
  resume: Ok
  limit: Ok
  limits: { limits: LimitView[] }
  gc: GcResult
  drain: Ok
  stats: StatsView
  peers: { peers: PeerView[] }
  evict: Ok
  connect: { peer: string }
  invite: InviteCreated
  invites: { invites: InviteView[] }
  revokeInvite: Ok
}

export type JsonRouteName = Exclude<RouteName, StreamRouteName>

/** `'/jobs/:id/logs'` → `'id'`. */
type ParamNames<P extends string> =
  P extends `${string}:${infer Name}/${infer Rest}` ? Name | ParamNames<`/${Rest}`>
    : P extends `${string}:${infer Name}` ? Name : never

export type RouteParams<N extends RouteName> = Record<ParamNames<(typeof ROUTES)[N]['path']>, string>

/** Query values; `undefined` and `false` are left out, `true` is sent as `1`. */
export type QueryValues = Record<string, string | number | boolean | undefined>

/** The URL path (with query) of a route, relative to `/v1`. */
export function routePath<N extends RouteName> (name: N, params: RouteParams<N>, query: QueryValues = {}): string {
  const path = ROUTES[name].path.replace(/:([a-z]+)/gi, (_, key: string) => encodeURIComponent((params as Record<string, string>)[key]))
  const search = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== false) search.set(key, value === true ? '1' : String(value))
  }
  return search.size > 0 ? `${path}?${search}` : path
}

/** Matches a request path (with `/v1`) against a route; the decoding of parameters is left to the caller. */
export function routePattern (route: RouteSpec): RegExp {
  return new RegExp('^' + API_PREFIX + route.path.replace(/:[a-z]+/gi, '([^/]+)') + '$')
}
