/**
 * The control API: JSON over HTTP on the node's unix socket, and optionally on TCP with a bearer token.
 * Routes map onto the `Engine` interface; see docs/api.md.
 */
import { once } from 'node:events'
import { createHash, timingSafeEqual } from 'node:crypto'
import { chmod, lstat, rm } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { HomeLockedError, MeshqError, UnauthorizedError, UsageError, asError } from '../errors.js'
import { JOB_EVENT_KINDS, JOB_STATES, MAX_INVITE_TTL_MS, type JobEvent, type JobEventKind, type JobState, type ModifyRequest, type SubmitRequest } from '../types.js'
import type { Engine, EventQuery, ListQuery, LogStream, Selector } from './engine.js'
import { JsonShapeError, JsonShapeScanner, parseScanned } from './json-body.js'
import { API_PREFIX, MAX_BODY_BYTES, type ApiErrorBody } from './protocol.js'

export interface ControlServerInit {
  engine: Engine
  socketPath: string
  tcp?: { host: string, port: number, token: string }
}

export interface ControlServer {
  start: () => Promise<void>
  stop: () => Promise<void>
  /** The bound TCP address (after `start`), when TCP is enabled. */
  tcpAddress?: () => { host: string, port: number }
}

/** An error about the HTTP request itself (not about the engine's work). */
export class ApiRequestError extends MeshqError {
  override readonly status: number
  constructor (name: string, status: number, message: string) {
    super(message)
    this.name = name
    this.status = status
  }
}

/**
 * A client has this long to send a request's headers, and its whole body: connections that trickle
 * bytes (slowloris) are closed instead of holding the node's file descriptors. Answers, streams
 * included, are not limited. Node checks these deadlines every `connectionsCheckingInterval`.
 */
const REQUEST_LIMITS: http.ServerOptions = { headersTimeout: 5000, requestTimeout: 60_000, connectionsCheckingInterval: 1000 }

/** Node's `headersTimeout` starts with the first byte: a connection that sends none is closed after this. */
const SILENT_CONNECTION_MS = 5000

/** Open TCP API connections, at most; more are closed at once. The unix socket has no cap. */
export const MAX_TCP_CONNECTIONS = 64

/** Job events answered without `limit`. */
const DEFAULT_EVENT_LIMIT = 100

/** An event stream client this far behind is cut off rather than buffered without bound. */
const MAX_EVENT_BACKLOG_BYTES = 16 * 1024 * 1024

interface Request {
  req: http.IncomingMessage
  res: http.ServerResponse
  url: URL
  params: string[]
  /** Aborted when the client goes away. */
  signal: AbortSignal
}

type Handler = (r: Request) => Promise<unknown>

interface Route { method: string, pattern: RegExp, handler: Handler }

/** A handler's result that has already been written to the response (streams). */
const STREAMED = Symbol('streamed')

export function controlServer (init: ControlServerInit): ControlServer {
  const { engine, socketPath, tcp } = init
  const routes = makeRoutes(engine)
  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    dispatch(routes, req, res).catch(() => res.destroy())
  }
  const unixServer = http.createServer(REQUEST_LIMITS, handle)
  const tokenDigest = tcp === undefined ? undefined : digest(tcp.token)
  const tcpServer = tcp === undefined
    ? undefined
    : http.createServer(REQUEST_LIMITS, (req, res) => {
      if (!authorized(req.headers.authorization, tokenDigest as Buffer)) {
        // no second try on this connection: whoever lacks the token gets nothing to hold open
        res.setHeader('connection', 'close')
        req.resume()
        sendError(res, new UnauthorizedError('missing or wrong bearer token'))
        return
      }
      handle(req, res)
    })
  if (tcpServer !== undefined) tcpServer.maxConnections = MAX_TCP_CONNECTIONS
  for (const server of [unixServer, tcpServer]) if (server !== undefined) closeSilentConnections(server)

  const server: ControlServer = {
    async start () {
      await removeStaleSocket(socketPath)
      await listen(unixServer, { path: socketPath })
      await chmod(socketPath, 0o600)
      if (tcpServer !== undefined && tcp !== undefined) await listen(tcpServer, { host: tcp.host, port: tcp.port })
    },
    async stop () {
      await Promise.all([unixServer, tcpServer].map(async s => {
        if (s === undefined || !s.listening) return
        const closed = new Promise(resolve => s.close(resolve))
        s.closeAllConnections()
        await closed
      }))
      await rm(socketPath, { force: true })
    }
  }
  if (tcpServer !== undefined) {
    server.tcpAddress = () => {
      const address = tcpServer.address() as AddressInfo | null
      if (address === null) throw new Error('the TCP API is not listening')
      return { host: address.address, port: address.port }
    }
  }
  return server
}

function makeRoutes (engine: Engine): Route[] {
  const route = (method: string, path: string, handler: Handler): Route => {
    // `:name` segments match one URL-encoded path segment each.
    const pattern = new RegExp('^' + API_PREFIX + path.replace(/:[a-z]+/g, '([^/]+)') + '$')
    return { method, pattern, handler }
  }
  return [
    route('GET', '/status', async () => engine.status()),
    route('POST', '/jobs', async ({ req, signal }) => {
      const body = await readJson(req)
      const jobs = body.jobs
      if (!Array.isArray(jobs) || !jobs.every(isObject)) throw badRequest('body must be {"jobs": [ {...}, ... ]}')
      return { jobs: await engine.submit(jobs as unknown as SubmitRequest[], signal) }
    }),
    route('GET', '/jobs', async ({ url }) => ({ jobs: await engine.list(listQuery(url)) })),
    route('POST', '/jobs/kill', async ({ req }) => ({ jobs: await engine.kill(selector(await readJson(req))) })),
    route('POST', '/jobs/retry', async ({ req }) => ({ jobs: await engine.retry(selector(await readJson(req))) })),
    route('POST', '/jobs/rm', async ({ req }) => {
      const body = await readJson(req)
      const jobs = await engine.remove(selector(body))
      // the records only on request ("records": true), e.g. for `rm --json` to print them as submits
      return { ids: jobs.map(job => job.id), ...(body.records === true ? { jobs } : {}) }
    }),
    route('POST', '/jobs/mod', async ({ req }) => {
      const body = await readJson(req)
      if (!isObject(body.change)) throw badRequest('body must be {"ids": [...] or "group": G, "change": {...}}')
      return { jobs: await engine.modify(selector(body), body.change as ModifyRequest) }
    }),
    route('POST', '/jobs/states', async ({ req }) => ({ jobs: await engine.states(jobIds(await readJson(req))) })),
    route('GET', '/jobs/:id', async ({ params }) => await engine.get(params[0])),
    route('POST', '/catch-up', async () => await engine.catchUp()),
    route('GET', '/jobs/:id/logs', async (r) => await streamLog(engine, r)),
    route('POST', '/groups/:group/pause', async ({ req, params }) => {
      const { forMs } = await readJson(req)
      if (forMs !== undefined && (typeof forMs !== 'number' || !Number.isFinite(forMs) || forMs < 0)) {
        throw badRequest('forMs must be a non-negative number of milliseconds')
      }
      await engine.pause(params[0], forMs)
      return { ok: true }
    }),
    route('POST', '/groups/:group/resume', async ({ req, params }) => {
      await readJson(req)
      await engine.resume(params[0])
      return { ok: true }
    }),
    route('POST', '/groups/:group/limit', async ({ req, params }) => {
      const { limit } = await readJson(req)
      if (limit !== null && typeof limit !== 'number') throw badRequest('limit must be a number, or null to lift it')
      await engine.limit(params[0], limit)
      return { ok: true }
    }),
    route('GET', '/limits', async () => ({ limits: await engine.limits() })),
    route('POST', '/gc', async ({ req }) => {
      const { olderThanMs, dryRun } = await readJson(req)
      if (typeof olderThanMs !== 'number' || !Number.isSafeInteger(olderThanMs) || olderThanMs < 0) throw badRequest('olderThanMs must be a whole number of milliseconds')
      return await engine.gc(olderThanMs, dryRun === true)
    }),
    route('POST', '/drain', async ({ req }) => {
      const { peer } = await readJson(req)
      if (peer !== undefined && typeof peer !== 'string') throw badRequest('peer must be a string')
      await engine.drain(peer)
      return { ok: true }
    }),
    route('GET', '/stats', async () => await engine.stats()),
    route('GET', '/peers', async () => ({ peers: await engine.peers() })),
    route('POST', '/peers/:id/evict', async ({ params }) => { await engine.evict(params[0]); return { ok: true } }),
    route('POST', '/peers/connect', async ({ req }) => {
      const { addr } = await readJson(req)
      if (typeof addr !== 'string') throw badRequest('addr must be a string (a multiaddr)')
      return await engine.connect(addr)
    }),
    route('POST', '/invites', async ({ req }) => {
      const body = await readJson(req) as { ttlMs?: unknown, uses?: unknown }
      const ttlMs = body.ttlMs ?? 3_600_000
      const uses = body.uses ?? 1
      if (!Number.isInteger(ttlMs) || (ttlMs as number) <= 0 || !Number.isInteger(uses) || (uses as number) <= 0) {
        throw new UsageError('ttlMs and uses must be positive integers')
      }
      if ((ttlMs as number) > MAX_INVITE_TTL_MS) throw new UsageError(`ttlMs must be at most ${MAX_INVITE_TTL_MS} (365 days)`)
      return await engine.invite({ ttlMs: ttlMs as number, uses: uses as number })
    }),
    route('GET', '/invites', async () => ({ invites: await engine.invites() })),
    route('POST', '/invites/:id/revoke', async ({ params }) => { await engine.revokeInvite(params[0]); return { ok: true } }),
    route('GET', '/events', async (r) => streamEvents(engine, r)),
    route('GET', '/job-events', async (r) => streamJobEvents(engine, r))
  ]
}

async function dispatch (routes: Route[], req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const controller = new AbortController()
  res.on('close', () => controller.abort())
  try {
    const url = new URL(req.url ?? '/', 'http://meshq')
    let pathMatched = false
    for (const { method, pattern, handler } of routes) {
      const match = pattern.exec(url.pathname)
      if (match === null) continue
      pathMatched = true
      if (method !== req.method) continue
      const params = match.slice(1).map(decodeSegment)
      const result = await handler({ req, res, url, params, signal: controller.signal })
      if (result !== STREAMED) sendJson(res, 200, result)
      return
    }
    throw pathMatched
      ? new ApiRequestError('MethodNotAllowedError', 405, `${req.method ?? '?'} is not allowed on ${url.pathname}`)
      : new ApiRequestError('NotFoundError', 404, `no such endpoint: ${req.method ?? '?'} ${url.pathname}`)
  } catch (err) {
    if (res.headersSent) {
      res.destroy()
      return
    }
    // Leftover request bytes must not be parsed as the next request.
    if (!req.complete) req.resume()
    sendError(res, err)
  }
}

function sendJson (res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value ?? null)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function sendError (res: http.ServerResponse, err: unknown): void {
  const error = asError(err)
  const status = error instanceof MeshqError ? error.status : 500
  const body: ApiErrorBody = { error: { name: error.name, message: error.message } }
  sendJson(res, status, body)
}

function badRequest (message: string): ApiRequestError {
  return new ApiRequestError('BadRequestError', 400, message)
}

function decodeSegment (segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw badRequest(`bad URL encoding: ${segment}`)
  }
}

/**
 * Reads a JSON object body (an empty body is `{}`). Over the limit, the rest is read and discarded
 * so that the client still receives the 413 answer.
 */
async function readJson (req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const declared = Number(req.headers['content-length'] ?? 0)
  const tooLarge = (): ApiRequestError => new ApiRequestError('PayloadTooLargeError', 413,
    `request body is larger than ${MAX_BODY_BYTES / 1024 / 1024} MiB`)
  if (declared > MAX_BODY_BYTES) {
    req.resume()
    throw tooLarge()
  }
  const chunks: Buffer[] = []
  const scanner = new JsonShapeScanner()
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) {
      req.resume()
      throw tooLarge()
    }
    try {
      scanner.push(chunk)
    } catch (err) {
      req.resume()
      throw badRequest((err as Error).message)
    }
    chunks.push(chunk)
  }
  if (scanner.empty) return {}
  let value: unknown
  try {
    value = await parseScanned(Buffer.concat(chunks), scanner)
  } catch (err) {
    throw badRequest(err instanceof JsonShapeError ? err.message : `request body is not valid JSON: ${(err as Error).message}`)
  }
  if (!isObject(value)) throw badRequest('request body must be a JSON object')
  return value
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function selector (body: Record<string, unknown>): Selector {
  const { ids, group } = body
  if (ids !== undefined && (!Array.isArray(ids) || !ids.every(id => typeof id === 'string'))) {
    throw badRequest('ids must be an array of strings')
  }
  if (group !== undefined && typeof group !== 'string') throw badRequest('group must be a string')
  if (ids === undefined && group === undefined) throw badRequest('give ids or a group')
  return { ids, group }
}

/** The `{"ids": [...]}` of a request about named jobs only. */
function jobIds (body: Record<string, unknown>): string[] {
  const { ids } = body
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every(id => typeof id === 'string')) throw badRequest('body must be {"ids": ["ID", ...]} with at least one id')
  return ids
}

function listQuery (url: URL): ListQuery {
  const query: ListQuery = {}
  const state = url.searchParams.get('state')
  if (state !== null && state !== '') {
    if (!JOB_STATES.includes(state as JobState)) throw badRequest(`unknown state '${state}' (one of ${JOB_STATES.join(', ')})`)
    query.state = state as JobState
  }
  const group = url.searchParams.get('group')
  if (group !== null && group !== '') query.group = group
  const limit = url.searchParams.get('limit')
  if (limit !== null && limit !== '') {
    if (!/^\d+$/.test(limit) || Number(limit) < 1) throw badRequest(`limit must be a positive integer, not '${limit}'`)
    query.limit = Number(limit)
  }
  const array = url.searchParams.get('array')
  if (array !== null && array !== '') query.array = array
  if (url.searchParams.get('tasks') === 'true') query.tasks = true
  return query
}

function streamEvents (engine: Engine, { res, signal }: Request): typeof STREAMED {
  // Subscribe before the headers go out: a client that has the headers sees every later change.
  const unsubscribe = engine.subscribe(event => {
    if (res.destroyed) return
    if (res.writableLength > MAX_EVENT_BACKLOG_BYTES) {
      res.destroy()
      return
    }
    res.write(JSON.stringify(event) + '\n')
  })
  signal.addEventListener('abort', unsubscribe, { once: true })
  if (signal.aborted) unsubscribe()
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' })
  res.flushHeaders()
  return STREAMED
}

function eventQuery (url: URL): EventQuery & { follow: boolean } {
  const kinds = (url.searchParams.get('kinds') ?? '').split(',').filter(k => k !== '')
  const unknown = kinds.find(k => !JOB_EVENT_KINDS.includes(k as JobEventKind))
  if (unknown !== undefined) throw badRequest(`unknown event '${unknown}' (one of ${JOB_EVENT_KINDS.join(', ')})`)
  const limit = url.searchParams.get('limit') ?? String(DEFAULT_EVENT_LIMIT)
  if (!/^\d+$/.test(limit)) throw badRequest(`limit must be a whole number, not '${limit}'`)
  const follow = url.searchParams.get('follow')
  return { kinds: kinds as JobEventKind[], limit: Number(limit), follow: follow === '1' || follow === 'true' }
}

/** NDJSON: the latest job events, then (with `follow`) every new one as it happens. */
function streamJobEvents (engine: Engine, { res, url, signal }: Request): typeof STREAMED {
  const query = eventQuery(url)
  const send = (event: JobEvent): void => {
    if (res.destroyed) return
    if (res.writableLength > MAX_EVENT_BACKLOG_BYTES) {
      res.destroy()
      return
    }
    res.write(JSON.stringify(event) + '\n')
  }
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' })
  // history and subscription in one turn of the event loop: no event is missed or sent twice
  for (const event of engine.jobEvents(query)) send(event)
  if (!query.follow) {
    res.end()
    return STREAMED
  }
  const unsubscribe = engine.subscribeJobEvents(event => {
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
  const followParam = url.searchParams.get('follow')
  const follow = followParam === '1' || followParam === 'true'
  const iterator = engine.readLog(params[0], stream as LogStream, { follow, signal })[Symbol.asyncIterator]()
  try {
    // The first chunk is read before answering so that "no such job" is still a proper error answer.
    let next = await iterator.next()
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' })
    res.flushHeaders()
    while (next.done !== true) {
      // Copied: an engine may reuse its buffer once it is asked for the next chunk.
      if (!res.write(Buffer.from(next.value))) await drained(res, signal)
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

async function drained (res: http.ServerResponse, signal: AbortSignal): Promise<void> {
  await once(res, 'drain', { signal })
}

function digest (token: string): Buffer {
  return createHash('sha256').update(token).digest()
}

/** Compares the bearer token in constant time (both sides hashed to the same length first). */
function authorized (header: string | undefined, expected: Buffer): boolean {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? '')
  const given = digest(match?.[1] ?? '')
  return timingSafeEqual(given, expected) && match !== null
}

/** Closes a connection that sends no request within SILENT_CONNECTION_MS of opening. */
function closeSilentConnections (server: http.Server): void {
  server.on('connection', (socket: net.Socket) => { socket.setTimeout(SILENT_CONNECTION_MS, () => socket.destroy()) })
  server.on('request', (req: http.IncomingMessage) => { req.socket.setTimeout(0) })
}

async function listen (server: http.Server, options: net.ListenOptions): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

/** Removes a socket file left by a node that is gone; refuses if a node still answers on it. */
async function removeStaleSocket (socketPath: string): Promise<void> {
  try {
    await lstat(socketPath)
  } catch {
    return
  }
  const alive = await new Promise<boolean>(resolve => {
    const socket = net.connect(socketPath)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
  if (alive) throw new HomeLockedError(`another process is serving on ${socketPath}`)
  await rm(socketPath, { force: true })
}
