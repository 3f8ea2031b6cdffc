/**
 * Random requests for every route of the control API, and what every answer must look like: shared
 * by the in-process fuzzing (fuzz-api.test.ts) and the one against a real node (fuzz-e2e.test.ts).
 */
import http from 'node:http'
import fc from 'fast-check'
import { expect } from 'vitest'

export interface ApiRequest {
  method: string
  path: string
  body?: string | Uint8Array
}

export interface ApiAnswer {
  status: number
  /** The parsed body; undefined for a stream that was cut off after its headers. */
  json: any
  streamed: boolean
}

interface Route {
  method: string
  path: string
  body: fc.Arbitrary<unknown>
  /** Whether raw bodies may be sent too (not to /drain: `{}` would stop the node under test). */
  raw?: false
}

const anyValue = fc.anything({ maxDepth: 3 })
const mostly = <T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: anyValue })
const jobIds = fc.array(fc.oneof(fc.constantFrom('aaaaaa-1', 'zzzzzz-9', '../x'), fc.string()), { maxLength: 3 })
const group = fc.oneof(fc.constantFrom('fuzz', 'g1'), fc.string())
const number = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -1, 1e300, Number.MAX_SAFE_INTEGER))
const selector = fc.record({ ids: mostly(jobIds), group: mostly(group), records: mostly(fc.boolean()) }, { requiredKeys: [] })

/** A submit request that is often valid, so that validation is passed and the next layer reached. */
const submitRequest = fc.record({
  // never anything that runs: the fuzzed node has no slots, and the command is `true` or nonsense
  cmd: mostly(fc.array(fc.oneof(fc.constant('true'), fc.string()), { minLength: 1, maxLength: 3 })),
  group: mostly(group),
  name: mostly(fc.string()),
  pri: mostly(number),
  retries: mostly(number),
  ttr: mostly(number),
  timeout: mostly(number),
  delay: mostly(number),
  after: mostly(jobIds),
  afterGroup: mostly(fc.array(group, { maxLength: 2 })),
  tag: mostly(fc.array(fc.string(), { maxLength: 2 })),
  cores: mostly(number),
  env: mostly(fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 })),
  cwd: mostly(fc.constantFrom('/', '/tmp', 'relative', '/no/such/dir')),
  id: mostly(fc.string()),
  out: mostly(fc.string()),
  tmpdir: mostly(fc.boolean()),
  mem: mostly(number)
}, { requiredKeys: [] })

/** Every route with bodies near its own shape. `:x` parameters are filled in by `bodyFor`. */
export const ROUTES: Route[] = [
  { method: 'GET', path: '/status', body: fc.constant(undefined) },
  { method: 'POST', path: '/jobs', body: fc.record({ jobs: mostly(fc.array(submitRequest, { maxLength: 3 })) }) },
  { method: 'GET', path: '/jobs', body: fc.constant(undefined) },
  { method: 'POST', path: '/jobs/kill', body: selector },
  { method: 'POST', path: '/jobs/retry', body: selector },
  { method: 'POST', path: '/jobs/rm', body: selector },
  { method: 'POST', path: '/jobs/mod', body: fc.record({ ids: mostly(jobIds), group: mostly(group), change: mostly(fc.record({ pri: mostly(number), name: mostly(fc.string()), tag: mostly(fc.array(fc.string())), delay: mostly(number) }, { requiredKeys: [] })) }, { requiredKeys: [] }) },
  { method: 'GET', path: '/jobs/:x', body: fc.constant(undefined) },
  { method: 'POST', path: '/catch-up', body: fc.constant(undefined) },
  { method: 'GET', path: '/jobs/:x/logs', body: fc.constant(undefined) },
  { method: 'POST', path: '/groups/:x/pause', body: fc.record({ forMs: mostly(number) }, { requiredKeys: [] }) },
  { method: 'POST', path: '/groups/:x/resume', body: fc.constant({}) },
  { method: 'POST', path: '/groups/:x/limit', body: fc.record({ limit: mostly(fc.option(number)) }) },
  { method: 'GET', path: '/limits', body: fc.constant(undefined) },
  { method: 'POST', path: '/gc', body: fc.record({ olderThanMs: mostly(fc.constantFrom(3_600_000 * 24 * 365, -1, 1.5, 1e300)), dryRun: mostly(fc.boolean()) }, { requiredKeys: [] }) },
  // a drain that names no peer, or this node, would stop the node under test: only other peers' ids
  { method: 'POST', path: '/drain', body: fc.record({ peer: fc.oneof(fc.string({ minLength: 1 }).map(s => `no-such-${s}`), fc.integer()) }), raw: false },
  { method: 'GET', path: '/stats', body: fc.constant(undefined) },
  { method: 'GET', path: '/peers', body: fc.constant(undefined) },
  { method: 'POST', path: '/peers/:x/evict', body: fc.constant(undefined) },
  { method: 'POST', path: '/invites', body: fc.record({ ttlMs: mostly(number), uses: mostly(number) }, { requiredKeys: [] }) },
  { method: 'GET', path: '/invites', body: fc.constant(undefined) },
  { method: 'POST', path: '/invites/:x/revoke', body: fc.constant(undefined) },
  { method: 'GET', path: '/job-events', body: fc.constant(undefined) },
  { method: 'GET', path: '/nope', body: fc.constant(undefined) }
]

const segment = fc.oneof(fc.constantFrom('aaaaaa-1', 'fuzz', '..', '%zz', '%', '%2F'), fc.string().map(encodeURIComponent))
const query = fc.dictionary(fc.constantFrom('state', 'group', 'limit', 'kinds', 'follow', 'stream', 'x'), fc.oneof(fc.constantFrom('ready', 'done', '0', '1', '-1', 'true', 'stdout', 'stderr', 'job,nope', ''), fc.string()), { maxKeys: 3 })
const rawBody = fc.oneof(fc.string(), fc.uint8Array({ maxLength: 256 }), fc.jsonValue().map(v => JSON.stringify(v)))

/** A request for `route`: its method mostly, its parameters and query random, its body near its shape or raw bytes. */
export function bodyFor (route: Route): fc.Arbitrary<ApiRequest> {
  const shaped = route.body.map(b => b === undefined ? undefined : JSON.stringify(b))
  return fc.record({
    method: route.raw === false ? fc.constant(route.method) : fc.oneof({ weight: 9, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE') }),
    params: fc.array(segment, { minLength: 2, maxLength: 2 }),
    query,
    body: route.raw === false ? shaped : fc.oneof({ weight: 4, arbitrary: shaped }, { weight: 1, arbitrary: rawBody })
  }).map(({ method, params, query, body }) => {
    let i = 0
    const path = '/v1' + route.path.replace(/:x/g, () => params[i++]) + (Object.keys(query).length > 0 ? '?' + new URLSearchParams(query).toString() : '')
    return { method, path, body: typeof body === 'string' || body instanceof Uint8Array ? body : undefined }
  })
}

/** Sends one request; a streamed answer (logs, events) is cut off after its headers. */
export async function apiRequest (target: { socketPath: string } | { host: string, port: number }, request: ApiRequest): Promise<ApiAnswer> {
  return await new Promise((resolve, reject) => {
    const headers = request.body === undefined ? {} : { 'content-length': Buffer.byteLength(request.body) }
    const req = http.request({ ...target, method: request.method, path: request.path, headers, agent: false, timeout: 30_000 }, res => {
      const type = res.headers['content-type'] ?? ''
      if (res.statusCode === 200 && (type.includes('ndjson') || type.includes('octet-stream'))) {
        res.destroy()
        resolve({ status: 200, json: undefined, streamed: true })
        return
      }
      const chunks: Buffer[] = []
      res.on('data', chunk => chunks.push(chunk))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text), streamed: false })
        } catch {
          reject(new Error(`${request.method} ${request.path} answered ${res.statusCode ?? '?'} with a body that is not JSON: ${text.slice(0, 200)}`))
        }
      })
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${request.method} ${request.path} got no answer in 30 s`)))
    req.on('error', reject)
    req.end(request.body)
  })
}

/** A proper answer: a success, or a client error with a name and a message; never a server error. */
export function answered (answer: ApiAnswer): void {
  if (answer.status < 300) return
  expect(answer.status, JSON.stringify(answer.json)).toBeLessThan(500)
  expect(typeof answer.json?.error?.name).toBe('string')
  expect(typeof answer.json?.error?.message).toBe('string')
}
