/**
 * Property-based fuzzing of the control API in process: every route's body, query and path
 * parameters (over the unix socket, against the in-memory engine), and the body reader that
 * guards the node against nesting bombs and huge bodies. A real node gets the same treatment in
 * fuzz-e2e.test.ts, which also replays the requests that once found a bug (test/fuzz-corpus/api.json).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient } from '../src/api/client.js'
import { JsonShapeError, JsonShapeScanner, MAX_JSON_DEPTH, MAX_JSON_PIECE_BYTES, parseScanned } from '../src/api/json-body.js'
import { controlServer, type ControlServer } from '../src/api/server.js'
import type { NodeStatus } from '../src/types.js'
import { FakeEngine } from './api-fake-engine.js'
import { ROUTES, apiRequest, bodyFor, answered, type ApiAnswer } from './fuzz-api-requests.js'

let dir: string
let socketPath: string
let server: ControlServer

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshq-fuzz-api-'))
  socketPath = join(dir, 'meshq.sock')
  server = controlServer({ engine: new FakeEngine(), socketPath })
  await server.start()
})

afterAll(async () => {
  await server?.stop()
  await rm(dir, { recursive: true, force: true })
})

const send = async (request: Parameters<typeof apiRequest>[1]): Promise<ApiAnswer> => await apiRequest({ socketPath }, request)

describe('fuzzing the control API', () => {
  it('answers every request to every route with a status and a well-formed body, and keeps answering', async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom(...ROUTES).chain(route => bodyFor(route)), async request => {
      answered(await send(request))
    }), { numRuns: 2000 })
    expect((await new ApiClient(socketPath).request<NodeStatus>('GET', '/status')).clusterId).toBe('c1')
  })
})

/** Feeds `text` to a scanner in chunks cut at `cuts`, then parses it as the server does. */
async function readBody (text: string, cuts: number[] = []): Promise<unknown> {
  const bytes = Buffer.from(text)
  const scanner = new JsonShapeScanner()
  let at = 0
  for (const cut of [...cuts.map(c => c % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) {
    scanner.push(bytes.subarray(at, Math.max(at, cut)))
    at = Math.max(at, cut)
  }
  return await parseScanned(bytes, scanner)
}

const bodyObject = fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 6 }), { maxKeys: 6 })

describe('fuzzing the request body reader', () => {
  it('reads any JSON object of ordinary depth as JSON.parse does, however its bytes are cut into chunks', async () => {
    await fc.assert(fc.asyncProperty(bodyObject, fc.array(fc.nat()), async (value, cuts) => {
      const text = JSON.stringify(value)
      expect(await readBody(text, cuts)).toEqual(JSON.parse(text))
    }), { numRuns: 2000 })
  })

  it('never accepts what JSON.parse refuses, and refuses only with SyntaxError or JsonShapeError', async () => {
    const nearJson = fc.tuple(bodyObject, fc.nat(), fc.constantFrom('', '{', '}', '[', ']', '"', '\\', ',', ':', 'x')).map(([value, at, insert]) => {
      const text = JSON.stringify(value)
      const cut = at % (text.length + 1)
      return text.slice(0, cut) + insert + text.slice(cut)
    })
    await fc.assert(fc.asyncProperty(fc.oneof(nearJson, fc.string()), async text => {
      let parsed: unknown
      let valid = true
      try { parsed = JSON.parse(text) } catch { valid = false }
      try {
        const read = await readBody(text)
        expect(valid).toBe(true)
        expect(read).toEqual(parsed)
      } catch (err) {
        expect(err instanceof SyntaxError || err instanceof JsonShapeError).toBe(true)
      }
    }), { numRuns: 2000 })
  })

  it('refuses nesting deeper than the bound as soon as the byte that shows it arrives', () => {
    fc.assert(fc.property(fc.integer({ min: MAX_JSON_DEPTH, max: 10_000 }), fc.constantFrom('[', '{"a":'), (depth, open) => {
      const scanner = new JsonShapeScanner()
      expect(() => { scanner.push(Buffer.from('{"jobs":' + open.repeat(depth))) }).toThrow(JsonShapeError)
    }), { numRuns: 200 })
  })

  it('reads a body over 1 MiB in slices to the same value as JSON.parse', async () => {
    const job = fc.record({ cmd: fc.array(fc.string(), { minLength: 1, maxLength: 4 }), group: fc.string(), env: fc.dictionary(fc.string(), fc.string(), { maxKeys: 4 }) })
    await fc.assert(fc.asyncProperty(fc.array(job, { minLength: 1, maxLength: 20 }), fc.string(), async (jobs, tail) => {
      const many: unknown[] = []
      let size = 0
      for (let i = 0; size <= MAX_JSON_PIECE_BYTES; i++) {
        many.push(jobs[i % jobs.length])
        size += JSON.stringify(jobs[i % jobs.length]).length + 1
      }
      const text = JSON.stringify({ head: tail, jobs: many, tail })
      expect(await readBody(text, [4096, 65536, 1_000_000])).toEqual(JSON.parse(text))
    }), { numRuns: 10 })
  })
})
