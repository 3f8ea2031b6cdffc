/**
 * The transport of the control API, over the node's unix socket (or its TCP API with a token):
 * JSON calls, byte streams and NDJSON streams by path. Commands and the dashboard call the node
 * through its typed methods in node-client.ts. It must stay light (no node:http, see http-lite.ts).
 */
import { dirname } from 'node:path'
import { NodeUnreachableError } from '../errors.js'
import type { NodeEvent } from '../types.js'
import { request, type LiteResponse } from './http-lite.js'
import { API_PREFIX, type ApiErrorBody } from './protocol.js'
import { routePath } from './routes.js'

/** A unix socket path, or the TCP API's address and bearer token. */
export type ApiTarget = string | { host: string, port: number, token: string }

/** An error answered by the node: `name` is the server's error name (e.g. `JobNotFoundError`). */
export class ApiError extends Error {
  readonly status: number
  constructor (name: string, message: string, status: number) {
    super(message)
    this.name = name
    this.status = status
  }
}

const UNREACHABLE = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTDIR', 'EHOSTUNREACH', 'ENETUNREACH', 'EAGAIN'])
/** How long a client keeps trying a node whose accept queue is full (EAGAIN) before it reports it unreachable. */
const BUSY_RETRY_MS = 30_000

export class ApiClient {
  readonly target: ApiTarget

  constructor (target: ApiTarget) {
    this.target = target
  }

  /** Calls one JSON endpoint. `path` is relative to `/v1` (a path already starting with `/v1/` is kept). */
  async request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await this.open(method, path, body, signal)
    const text = await readText(res)
    return (text === '' ? undefined : JSON.parse(text)) as T
  }

  /** The raw bytes of a streaming endpoint (e.g. `/jobs/ID/logs?follow=1`), until the server ends it. */
  async * stream (path: string, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    const res = await this.open('GET', path, undefined, signal)
    try {
      yield * res.body
    } catch (err) {
      throw abortReason(signal) ?? err
    } finally {
      res.destroy()
    }
  }

  /**
   * Opens an NDJSON stream (e.g. `/events`) and resolves once the node has answered its head: for the
   * event stream, every change after this resolves is in the returned iterable.
   */
  async openLines<T> (path: string, signal?: AbortSignal): Promise<AsyncIterable<T>> {
    const res = await this.open('GET', path, undefined, signal)
    return ndjson<T>(res, signal)
  }

  /** The node's events (`GET /v1/events`), subscribed once this resolves. */
  async openEvents (signal?: AbortSignal): Promise<AsyncIterable<NodeEvent>> {
    return await this.openLines<NodeEvent>(routePath('events', {}), signal)
  }

  /** Where the node is, for messages. */
  describe (): string {
    return typeof this.target === 'string' ? dirname(this.target) : `${this.target.host}:${this.target.port}`
  }

  private async open (method: string, path: string, body: unknown, signal: AbortSignal | undefined): Promise<LiteResponse> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    const headers: Record<string, string> = { accept: 'application/json' }
    if (payload !== undefined) headers['content-type'] = 'application/json'
    if (typeof this.target !== 'string') headers.authorization = `Bearer ${this.target.token}`
    const where = typeof this.target === 'string' ? { socketPath: this.target } : { host: this.target.host, port: this.target.port }
    const fullPath = path.startsWith(API_PREFIX + '/') ? path : API_PREFIX + path
    let res: LiteResponse
    const giveUpAt = Date.now() + BUSY_RETRY_MS
    for (let delay = 10; ; delay = Math.min(2 * delay, 500)) {
      try {
        res = await request(where, method, fullPath, headers, payload, signal)
        break
      } catch (err) {
        // the node's accept queue is full (a busy node, many clients): not gone, so try again
        if ((err as { code?: string }).code === 'EAGAIN' && signal?.aborted !== true && Date.now() < giveUpAt) {
          await new Promise(resolve => setTimeout(resolve, delay))
          continue
        }
        throw abortReason(signal) ?? this.translate(err as Error)
      }
    }
    if (res.status < 400) return res
    throw apiError(res.status, await readText(res))
  }

  private translate (err: Error & { code?: string }): Error {
    if (err.code !== undefined && UNREACHABLE.has(err.code)) {
      return new NodeUnreachableError(`cannot reach the meshq node at ${this.describe()}: is \`meshq node\` running?`)
    }
    return err
  }
}

function apiError (status: number, text: string): ApiError {
  try {
    const { error } = JSON.parse(text) as ApiErrorBody
    if (typeof error?.name === 'string' && typeof error.message === 'string') {
      return new ApiError(error.name, error.message, status)
    }
  } catch { /* not our JSON error body: reported as text below */ }
  return new ApiError('ApiError', `the node answered ${status}: ${text.slice(0, 200)}`, status)
}

async function readText (res: LiteResponse): Promise<string> {
  const chunks: Buffer[] = []
  try {
    for await (const chunk of res.body) chunks.push(chunk)
  } finally {
    res.destroy()
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** When the caller aborted, the stream's own error (a reset) is reported as the abort. */
function abortReason (signal: AbortSignal | undefined): unknown {
  return signal?.aborted === true ? signal.reason : undefined
}

async function * ndjson<T> (res: LiteResponse, signal: AbortSignal | undefined): AsyncIterable<T> {
  const decoder = new TextDecoder()
  let buffered = ''
  try {
    for await (const chunk of res.body) {
      buffered += decoder.decode(chunk, { stream: true })
      let newline
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline)
        buffered = buffered.slice(newline + 1)
        if (line.trim() !== '') yield JSON.parse(line) as T
      }
    }
  } catch (err) {
    throw abortReason(signal) ?? err
  } finally {
    res.destroy()
  }
}
