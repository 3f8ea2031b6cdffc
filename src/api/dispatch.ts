/**
 * Routing one HTTP request: finds its route in the table, runs the handler, writes the JSON answer
 * or the error. Handlers that stream write their answer themselves.
 */
import type http from 'node:http'
import { MeshqError, asError } from '../errors.js'
import type { ApiErrorBody } from './protocol.js'
import { ROUTES, routePattern, type JsonRouteName, type RouteAnswers, type RouteName } from './routes.js'

/** An error about the HTTP request itself (not about the engine's work). */
export class ApiRequestError extends MeshqError {
  override readonly status: number
  constructor (name: string, status: number, message: string) {
    super(message)
    this.name = name
    this.status = status
  }
}

export function badRequest (message: string): ApiRequestError {
  return new ApiRequestError('BadRequestError', 400, message)
}

export interface Request {
  req: http.IncomingMessage
  res: http.ServerResponse
  url: URL
  /** The route's `:name` segments, decoded, in order. */
  params: string[]
  /** Aborted when the client goes away. */
  signal: AbortSignal
}

/** A handler's result that has already been written to the response (streams). */
export const STREAMED = Symbol('streamed')

type Answer<N extends RouteName> = N extends JsonRouteName ? RouteAnswers[N] : typeof STREAMED

/** One handler per route of the table: the compiler refuses a route without one. */
export type Handlers = { [N in RouteName]: (r: Request) => Promise<Answer<N>> }

interface CompiledRoute { method: string, pattern: RegExp, handler: (r: Request) => Promise<unknown> }

export type Dispatch = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>

export function dispatcher (handlers: Handlers): Dispatch {
  const routes: CompiledRoute[] = (Object.keys(ROUTES) as RouteName[]).map(name => ({
    method: ROUTES[name].method,
    pattern: routePattern(ROUTES[name]),
    handler: handlers[name]
  }))
  return async (req, res) => { await dispatch(routes, req, res) }
}

async function dispatch (routes: CompiledRoute[], req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
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

export function sendError (res: http.ServerResponse, err: unknown): void {
  const error = asError(err)
  const status = error instanceof MeshqError ? error.status : 500
  const body: ApiErrorBody = { error: { name: error.name, message: error.message } }
  sendJson(res, status, body)
}

function decodeSegment (segment: string): string {
  try {
    return decodeURIComponent(segment)
  } catch {
    throw badRequest(`bad URL encoding: ${segment}`)
  }
}
