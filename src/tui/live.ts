/**
 * The dashboard's I/O, without React: following the event stream into the store, polling the
 * cluster's status, performing actions, tailing a log. Every loop reconnects until aborted.
 */
import type { NodeClient } from '../api/node-client.js'
import { NodeUnreachableError } from '../errors.js'
import type { JobView, NodeStatus, PeerView, StatsView } from '../types.js'
import type { Effect } from './keys.js'
import { shortPeer, type ClusterView } from './format.js'
import { JobsStore, toRow } from './store.js'

/** The calls the dashboard makes (tests give a NodeClient over a fake transport). */
export type TopClient = Pick<
  NodeClient,
  'openEvents' | 'list' | 'listBytes' | 'get' | 'status' | 'stats' | 'peers' | 'submit' | 'kill' | 'retry' | 'drain' | 'pause' | 'resume' |
  'readLog'
>

const RETRY_MS = 1000
const POLL_MS = 2000
/**
 * Jobs asked for first (the newest), shown while every job loads: with 100,000 jobs, the node
 * takes seconds to answer them all.
 */
export const FIRST_PAGE = 500
/** Throughput samples kept for the sparkline (one per poll: six minutes). */
const HISTORY = 180

/** Resolves after `ms`, or at once when `signal` aborts. */
export async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>(resolve => {
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
    function done (): void {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
  })
}

/** Calls `fn` at most once per `ms`, after the first call of each period (batches bursts). */
export function throttle (fn: () => void, ms: number): { call: () => void, cancel: () => void } {
  let timer: NodeJS.Timeout | undefined
  return {
    call () {
      timer ??= setTimeout(() => {
        timer = undefined
        fn()
      }, ms)
    },
    cancel () {
      clearTimeout(timer)
      timer = undefined
    }
  }
}

/**
 * Keeps `store` in sync: loads the newest jobs while it subscribes to the events, then (once
 * `shown` resolves) every job, then applies each event (those that came meanwhile first). The
 * newest jobs may be from before the subscription: they are only shown until every job is loaded.
 * When the stream ends or fails (the node went away), reports it and starts again after a second.
 */
export async function followJobs (
  client: TopClient,
  store: JobsStore,
  on: { changed: () => void, report: (error: Error | undefined) => void, shown?: Promise<void> },
  signal: AbortSignal
): Promise<void> {
  const { changed, report } = on
  while (!signal.aborted) {
    // each try's requests end with it: a failed load must not leave its event stream open
    const attempt = new AbortController()
    const tried = AbortSignal.any([signal, attempt.signal])
    try {
      const [events, jobs] = await Promise.all([client.openEvents(tried), client.list({ limit: FIRST_PAGE }, tried)])
      store.load(jobs.map(toRow), jobs.length < FIRST_PAGE)
      changed()
      report(undefined)
      await on.shown
      store.load(await loadJobs(client, toRow, tried), true)
      changed()
      for await (const event of events) {
        store.apply(event)
        changed()
      }
      if (!signal.aborted) report(new NodeUnreachableError('the node closed the event stream'))
    } catch (err) {
      if (!signal.aborted) report(err as Error)
    } finally {
      attempt.abort()
    }
    await sleep(RETRY_MS, signal)
  }
}

/**
 * The jobs, followed from the node (`followJobs`) from construction until `stop`: the dashboard
 * starts one before its code loads, so that the node answers while Ink and React load. Every job
 * is loaded once the dashboard listens: for 100,000 jobs that keeps the node and this process busy
 * for seconds, which would delay the first frame and the header's first poll.
 */
export class JobsFeed {
  readonly store = new JobsStore()
  /** What went wrong with the connection, until it works again. */
  error: Error | undefined
  private listener: (() => void) | undefined
  private readonly abort = new AbortController()
  private listening = (): void => {}

  constructor (client: TopClient) {
    const changed = (): void => this.listener?.()
    const shown = new Promise<void>(resolve => { this.listening = resolve })
    void followJobs(client, this.store, { changed, report: error => { this.error = error; changed() }, shown }, this.abort.signal)
  }

  /** Calls `listener` after every change (there is one listener: the dashboard, once drawn). */
  listen (listener: () => void): void {
    this.listener = listener
    this.listening()
  }

  stop (): void {
    this.listener = undefined
    this.abort.abort()
  }
}

/**
 * What `keep` makes of every job (`GET /v1/jobs`), parsed one job at a time as the answer streams
 * in: neither the whole answer (tens of MiB for 100,000 jobs) nor every full job is ever held.
 */
export async function loadJobs<T> (client: TopClient, keep: (job: JobView) => T, signal?: AbortSignal): Promise<T[]> {
  const jobs: T[] = []
  const splitter = new ArrayItems(text => jobs.push(keep(JSON.parse(text) as JobView)))
  const decoder = new TextDecoder()
  for await (const chunk of client.listBytes({}, signal)) splitter.push(decoder.decode(chunk, { stream: true }))
  splitter.push(decoder.decode())
  if (!splitter.ended) throw new Error('the list of jobs ended early')
  return jobs
}

const QUOTE = 34
const BACKSLASH = 92
const OPEN_BRACE = 123
const OPEN_BRACKET = 91
const CLOSE_BRACE = 125
const CLOSE_BRACKET = 93

/**
 * Splits the JSON text of `{"key": [{…}, {…}, …]}`, fed in pieces, into the text of each object in
 * the array: a scanner of nesting depth that skips strings.
 */
export class ArrayItems {
  private depth = 0
  private inString = false
  private escaped = false
  /** The unfinished item's text from earlier pieces. */
  private partial = ''
  /** Whether the outer object has closed. */
  ended = false

  constructor (private readonly item: (text: string) => void) {}

  push (piece: string): void {
    let start = this.depth >= 3 ? 0 : -1
    for (let i = 0; i < piece.length; i++) {
      const c = piece.charCodeAt(i)
      if (this.inString) {
        if (this.escaped) this.escaped = false
        else if (c === BACKSLASH) this.escaped = true
        else if (c === QUOTE) this.inString = false
      } else if (c === QUOTE) {
        this.inString = true
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        if (++this.depth === 3) start = i
      } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        if (--this.depth === 2) {
          this.item(this.partial + piece.slice(start, i + 1))
          this.partial = ''
          start = -1
        } else if (this.depth === 0) {
          this.ended = true
        }
      }
    }
    if (start >= 0) this.partial += piece.slice(start)
  }
}

export interface ClusterInfo extends ClusterView {
  error?: Error
}

export async function fetchCluster (
  client: TopClient, signal?: AbortSignal
): Promise<{ status: NodeStatus, stats: StatsView, peers: PeerView[] }> {
  const [status, stats, peers] = await Promise.all([client.status(signal), client.stats(signal), client.peers(signal)])
  return { status, stats, peers }
}

/** Polls status, stats and peers every two seconds (every second while the node is away). */
export async function pollCluster (
  client: TopClient, update: (change: (info: ClusterInfo) => ClusterInfo) => void, signal: AbortSignal
): Promise<void> {
  while (!signal.aborted) {
    try {
      const fresh = await fetchCluster(client, signal)
      update(info => ({ ...fresh, history: [...info.history, fresh.stats.throughput].slice(-HISTORY) }))
      await sleep(POLL_MS, signal)
    } catch (err) {
      if (!signal.aborted) update(info => ({ ...info, error: err as Error }))
      await sleep(RETRY_MS, signal)
    }
  }
}

/** Performs an action; resolves to what to tell the user. Throws the API's error. */
export async function perform (client: TopClient, cwd: string, effect: Exclude<Effect, { type: 'quit' }>): Promise<string> {
  switch (effect.type) {
    case 'say':
      return effect.text
    case 'submit': {
      const jobs = await client.submit([{ ...effect.request, cwd }])
      return `submitted ${jobs.map(j => j.id).join(' ')}`
    }
    case 'kill':
    case 'retry': {
      const jobs = await client[effect.type]({ ids: [effect.job.id] })
      const done = effect.type === 'kill' ? 'killed' : 'retrying'
      return jobs.length > 0 ? `${done} ${effect.job.id}` : `${effect.job.id} is ${effect.job.state}: nothing to ${effect.type}`
    }
    case 'drain':
      await client.drain(effect.peer.id)
      return `draining node ${shortPeer(effect.peer.id)}`
    case 'pause':
    case 'resume':
      await client[effect.type](effect.group)
      return `${effect.type === 'pause' ? 'paused' : 'resumed'} group ${effect.group}`
  }
}

const MAX_LINE = 10_000

/** What a terminal would show of a line: the text after its last carriage return (progress bars). */
function overwritten (line: string): string {
  const trimmed = line.endsWith('\r') ? line.slice(0, -1) : line
  return trimmed.slice(trimmed.lastIndexOf('\r') + 1).slice(0, MAX_LINE)
}

/** The last lines of a stream of bytes. */
export class LineTail {
  private readonly decoder = new TextDecoder()
  private complete: string[] = []
  private partial = ''

  constructor (private readonly max: number) {}

  push (chunk: Uint8Array): void {
    const parts = (this.partial + this.decoder.decode(chunk, { stream: true })).split('\n')
    this.partial = (parts.pop() ?? '').slice(-MAX_LINE)
    this.complete = this.complete.concat(parts.slice(-this.max).map(overwritten)).slice(-this.max)
  }

  lines (): string[] {
    return this.partial === '' ? this.complete.slice() : [...this.complete, overwritten(this.partial)]
  }
}

/** Follows a job's output into `tail` until it ends, `signal` aborts, or the node fails. */
export async function followLog (
  client: TopClient, id: string, stream: 'stdout' | 'stderr', tail: LineTail, changed: () => void, signal: AbortSignal
): Promise<void> {
  for await (const chunk of client.readLog(id, stream, { follow: true, signal })) {
    tail.push(chunk)
    changed()
  }
}
