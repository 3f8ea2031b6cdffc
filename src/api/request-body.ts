/**
 * Reading what a request asks: its JSON body, bounded and shape-checked, and the selectors, ids and
 * list queries in it. Anything malformed is a 400 answer naming what is wrong.
 */
import type http from 'node:http'
import { JOB_STATES, type JobState } from '../types.js'
import { ApiRequestError, badRequest } from './dispatch.js'
import type { ListQuery, Selector } from './engine.js'
import { JsonShapeError, JsonShapeScanner, parseScanned } from './json-body.js'
import { MAX_BODY_BYTES } from './protocol.js'

/**
 * Reads a JSON object body (an empty body is `{}`). Over the limit, the rest is read and discarded
 * so that the client still receives the 413 answer.
 */
export async function readJson (req: http.IncomingMessage): Promise<Record<string, unknown>> {
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

export function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function selector (body: Record<string, unknown>): Selector {
  const { ids, group } = body
  if (ids !== undefined && (!Array.isArray(ids) || !ids.every(id => typeof id === 'string'))) {
    throw badRequest('ids must be an array of strings')
  }
  if (group !== undefined && typeof group !== 'string') throw badRequest('group must be a string')
  if (ids === undefined && group === undefined) throw badRequest('give ids or a group')
  return { ids, group }
}

/** The `{"ids": [...]}` of a request about named jobs only. */
export function jobIds (body: Record<string, unknown>): string[] {
  const { ids } = body
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every(id => typeof id === 'string')) {
    throw badRequest('body must be {"ids": ["ID", ...]} with at least one id')
  }
  return ids
}

export function listQuery (url: URL): ListQuery {
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
  if (['1', 'true'].includes(url.searchParams.get('tasks') ?? '')) query.tasks = true
  return query
}

/** A `follow` query parameter: `1` or `true`. */
export function followParam (url: URL): boolean {
  const follow = url.searchParams.get('follow')
  return follow === '1' || follow === 'true'
}
