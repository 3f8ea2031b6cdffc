/**
 * The dashboard's state, as React hooks over the loops of live.ts. Each hook aborts its requests
 * when its component unmounts, so quitting leaves nothing running.
 */
import { useCallback, useEffect, useRef, useState } from 'react'
import type { Effect } from './keys.js'
import { followLog, JobsFeed, LineTail, perform, pollCluster, throttle, type ClusterInfo, type TopClient } from './live.js'
import type { JobView } from '../types.js'
import type { JobRow, JobsStore } from './store.js'

/** Renders are batched: at most one per this many ms for a burst of events or output. */
const BATCH_MS = 100
/** Lines of output the detail view keeps. */
const TAIL_LINES = 500

/** Runs `loop` while the component is mounted (and again when `deps` change). */
function useLoop (loop: (signal: AbortSignal) => Promise<void>, deps: unknown[]): void {
  useEffect(() => {
    const abort = new AbortController()
    void loop(abort.signal)
    return () => abort.abort()
  // eslint-disable-next-line react-hooks/exhaustive-deps -- the caller's deps, passed on as useEffect's
  }, deps)
}

/**
 * The jobs, kept in a store outside React by `feed` (else by a feed started here); `version`
 * changes (at most every BATCH_MS) when they do. The feed stops when the component unmounts.
 */
export function useJobsStore (client: TopClient, given?: JobsFeed): { store: JobsStore, version: number, error?: Error } {
  const [feed] = useState(() => given ?? new JobsFeed(client))
  const [seen, setSeen] = useState({ version: feed.store.version, error: feed.error })
  useEffect(() => {
    const render = throttle(() => setSeen({ version: feed.store.version, error: feed.error }), BATCH_MS)
    feed.listen(render.call)
    render.call() // what changed before this ran
    return () => {
      feed.stop()
      render.cancel()
    }
  }, [feed])
  return { store: feed.store, ...seen }
}

/** Status, stats and peers, polled; `history` holds the throughput samples for the sparkline. */
export function useClusterInfo (client: TopClient): ClusterInfo {
  const [info, setInfo] = useState<ClusterInfo>({ history: [] })
  useLoop(async signal => await pollCluster(client, setInfo, signal), [client])
  return info
}

export interface FullJob {
  job?: JobView
  /** Why the last request for it failed. */
  error?: Error
}

/**
 * The full job `id` (`GET /v1/jobs/ID`: the store keeps rows only), asked for again whenever `row`
 * (its row in the store) changes; not asked for while `row` is undefined (the job is gone): the
 * last answer stays.
 */
export function useFullJob (client: TopClient, id: string | undefined, row: JobRow | undefined): FullJob {
  const [answer, setAnswer] = useState<FullJob & { id?: string }>({})
  useLoop(async signal => {
    if (id === undefined || row === undefined) return
    try {
      const job = await client.get(id, signal)
      if (!signal.aborted) setAnswer({ id, job })
    } catch (err) {
      if (!signal.aborted) setAnswer(last => ({ id, job: last.id === id ? last.job : undefined, error: err as Error }))
    }
  }, [client, id, row])
  return answer.id === id ? answer : {}
}

/**
 * The last lines of a job's output, following it while it runs. `attempt` names the job's current
 * run: when it changes (the job starts, ends, is retried), the log is read again.
 */
export function useLogTail (
  client: TopClient, id: string | undefined, stream: 'stdout' | 'stderr', attempt: string
): { lines: string[], error?: Error } {
  const [tail, setTail] = useState<{ lines: string[], error?: Error }>({ lines: [] })
  useLoop(async signal => {
    setTail({ lines: [] })
    if (id === undefined) return
    const lines = new LineTail(TAIL_LINES)
    const render = throttle(() => setTail({ lines: lines.lines() }), BATCH_MS)
    signal.addEventListener('abort', render.cancel)
    try {
      await followLog(client, id, stream, lines, render.call, signal)
    } catch (err) {
      if (!signal.aborted) setTail({ lines: lines.lines(), error: err as Error })
    }
  }, [client, id, stream, attempt])
  return tail
}

export interface Notice {
  text: string
  error?: boolean
}

/** Performs effects, keeps what to tell the user, and remembers which groups this session paused. */
export function useActions (client: TopClient, cwd: string, store: JobsStore): {
  notice?: Notice
  run: (effect: Exclude<Effect, { type: 'quit' }>) => void
  paused: (group: string) => boolean
} {
  const [notice, setNotice] = useState<Notice>()
  const pausedHere = useRef(new Map<string, boolean>())
  const run = useCallback((effect: Exclude<Effect, { type: 'quit' }>) => {
    perform(client, cwd, effect).then(text => {
      if (effect.type === 'pause' || effect.type === 'resume') pausedHere.current.set(effect.group, effect.type === 'pause')
      setNotice({ text })
    }, (err: Error) => setNotice({ text: err.message, error: true }))
  }, [client, cwd])
  // Else a paused group's queued jobs say so in their reason.
  const paused = useCallback((group: string) => pausedHere.current.get(group) ??
    store.some(job => job.group === group && job.groupPaused), [store])
  return { notice, run, paused }
}
