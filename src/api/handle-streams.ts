/**
 * The routes that answer streams: the node's events and the job events as NDJSON, and a job's
 * output as bytes. Each writes its own answer and ends when the client goes away.
 */
import { once } from 'node:events'
import type http from 'node:http'
import { JOB_EVENT_KINDS, type JobEvent, type JobEventKind } from '../types.js'
import { STREAMED, badRequest, type Handlers, type Request } from './dispatch.js'
import type { Engine, EventQuery, LogStream } from './engine.js'
import { followParam } from './request-body.js'

/** Job events answered without `limit`. */
const DEFAULT_EVENT_LIMIT = 100

/** An event stream client this far behind is cut off rather than buffered without bound. */
const MAX_EVENT_BACKLOG_BYTES = 16 * 1024 * 1024

export function streamHandlers (engine: Engine): Pick<Handlers, 'readLog' | 'events' | 'jobEvents'> {
  return {
    readLog: async (r) => await streamLog(engine, r),
    events: async (r) => streamEvents(engine, r),
    jobEvents: async (r) => streamJobEvents(engine, r)
  }
}

/** Writes one NDJSON line, unless the client is gone or too far behind (then it is cut off). */
function lineWriter (res: http.ServerResponse): (value: unknown) => void {
  return value => {
    if (res.destroyed) return
    if (res.writableLength > MAX_EVENT_BACKLOG_BYTES) {
      res.destroy()
      return
    }
    res.write(JSON.stringify(value) + '\n')
  }
}

function writeNdjsonHead (res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' })
}

function streamEvents (engine: Engine, { res, signal }: Request): typeof STREAMED {
  // Subscribe before the headers go out: a client that has the headers sees every later change.
  const unsubscribe = engine.subscribe(lineWriter(res))
  signal.addEventListener('abort', unsubscribe, { once: true })
  if (signal.aborted) unsubscribe()
  writeNdjsonHead(res)
  res.flushHeaders()
  return STREAMED
}

function eventQuery (url: URL): EventQuery & { follow: boolean } {
  const kinds = (url.searchParams.get('kinds') ?? '').split(',').filter(k => k !== '')
  const unknown = kinds.find(k => !JOB_EVENT_KINDS.includes(k as JobEventKind))
  if (unknown !== undefined) throw badRequest(`unknown event '${unknown}' (one of ${JOB_EVENT_KINDS.join(', ')})`)
  const limit = url.searchParams.get('limit') ?? String(DEFAULT_EVENT_LIMIT)
  if (!/^\d+$/.test(limit)) throw badRequest(`limit must be a whole number, not '${limit}'`)
  return { kinds: kinds as JobEventKind[], limit: Number(limit), follow: followParam(url) }
}

/** NDJSON: the latest job events, then (with `follow`) every new one as it happens. */
function streamJobEvents (engine: Engine, { res, url, signal }: Request): typeof STREAMED {
  const query = eventQuery(url)
  const send = lineWriter(res)
  writeNdjsonHead(res)
  // history and subscription in one turn of the event loop: no event is missed or sent twice
  for (const event of engine.jobEvents(query)) send(event)
  if (!query.follow) {
    res.end()
    return STREAMED
  }
  const unsubscribe = engine.subscribeJobEvents((event: JobEvent) => {
    if (query.kinds.length === 0 || query.kinds.includes(event.event)) send(event)
  })
  signal.addEventListener('abort', unsubscribe, { once: true })
  if (signal.aborted) unsubscribe()
  res.flushHeaders()
  return STREAMED
}

async function streamLog (engine: Engine, { res, url, params, signal }: Request): Promise<typeof STREAMED> {
  const stream = url.searchParams.get('stream') ?? 'stdout'
  if (stream !== 'stdout' && stream !== 'stderr') throw badRequest(`stream must be stdout or stderr, not '${stream}'`)
  const iterator = engine.readLog(params[0], stream as LogStream, { follow: followParam(url), signal })[Symbol.asyncIterator]()
  try {
    // The first chunk is read before answering so that "no such job" is still a proper error answer.
    let next = await iterator.next()
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' })
    res.flushHeaders()
    while (next.done !== true) {
      // Copied: an engine may reuse its buffer once it is asked for the next chunk.
      if (!res.write(Buffer.from(next.value))) await once(res, 'drain', { signal })
      next = await iterator.next()
    }
    res.end()
  } catch (err) {
    if (signal.aborted) return STREAMED
    throw err
  } finally {
    await iterator.return?.()
  }
  return STREAMED
}
