import type {
  GcResult, JobStateView, LimitView, ModifyRequest, InviteCreated, InviteView, JobEvent, JobEventKind, JobState, JobView, NodeEvent,
  NodeStatus, PeerView, StatsView, SubmitRequest
} from '../types.js'

/** Which jobs an action applies to: explicit ids, or every job of a group. */
export interface Selector {
  ids?: string[]
  group?: string
}

export interface ListQuery {
  state?: JobState
  group?: string
  limit?: number
  /** The tasks of this array; without it, each array is one row (its tasks are left out). */
  array?: string
  /** Every task of every array, each as its own row. */
  tasks?: boolean
}

export type LogStream = 'stdout' | 'stderr'

export interface EventQuery {
  /** Only events of these kinds (every kind if empty). */
  kinds: JobEventKind[]
  limit: number
}

/**
 * What the control API serves: the node as its clients see it. The HTTP server in `server.ts`
 * maps routes onto these methods; the node implements them.
 */
export interface Engine {
  status: () => NodeStatus
  /** Submits all jobs or none; resolves after the ledger write is synced to disk. */
  submit: (jobs: SubmitRequest[], signal?: AbortSignal) => Promise<JobView[]>
  list: (query: ListQuery) => Promise<JobView[]>
  /** Throws JobNotFoundError (after catching up with the other members). */
  get: (id: string) => Promise<JobView>
  /**
   * The state of each job named, in order, without building job records (cheap for thousands of ids).
   * Throws JobNotFoundError naming the ids still unknown after catching up with the other members.
   */
  states: (ids: string[]) => Promise<JobStateView[]>
  /**
   * Resolves once this node holds what every reachable member held when asked; answers the members
   * it could not ask. Throws NotCaughtUpError after a timeout.
   */
  catchUp: () => Promise<{ unreachable: string[] }>
  kill: (selector: Selector) => Promise<JobView[]>
  retry: (selector: Selector) => Promise<JobView[]>
  /** With a group, skips its running jobs. Resolves to the removed jobs' records. */
  remove: (selector: Selector) => Promise<JobView[]>
  /** Changes jobs that are not running or done (`meshq mod`). */
  modify: (selector: Selector, request: ModifyRequest) => Promise<JobView[]>
  pause: (group: string, forMs?: number) => Promise<void>
  resume: (group: string) => Promise<void>
  /** Caps the group's jobs running at once across the mesh; null lifts the cap. */
  limit: (group: string, limit: number | null) => Promise<void>
  limits: () => Promise<LimitView[]>
  /** Drops finished history older than `olderThanMs` from every replica (`meshq gc`). */
  gc: (olderThanMs: number, dryRun: boolean) => Promise<GcResult>
  drain: (peer?: string) => Promise<void>
  stats: () => Promise<StatsView>
  peers: () => Promise<PeerView[]>
  /** Issues a join token. */
  invite: (options: { ttlMs: number, uses: number }) => Promise<InviteCreated>
  invites: () => Promise<InviteView[]>
  revokeInvite: (id: string) => Promise<void>
  /** Removes a member: it is disconnected and refused from then on. */
  evict: (peer: string) => Promise<void>
  /** Dials a member at this address (`meshq connect`); resolves with its peer id. */
  connect: (addr: string) => Promise<{ peer: string }>
  /** Calls `listener` for every change until the returned function is called. */
  subscribe: (listener: (event: NodeEvent) => void) => () => void
  /** The latest job events known here, cluster-wide, oldest first (`meshq events`). */
  jobEvents: (query: EventQuery) => JobEvent[]
  /** Calls `listener` for every new job event until the returned function is called. */
  subscribeJobEvents: (listener: (event: JobEvent) => void) => () => void
  /**
   * The job's captured output. With `follow`, keeps yielding until the job's attempt ends.
   * Throws JobNotFoundError.
   */
  readLog: (id: string, stream: LogStream, options: { follow: boolean, signal: AbortSignal }) => AsyncIterable<Uint8Array>
}
