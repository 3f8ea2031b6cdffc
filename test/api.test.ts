import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import http from 'node:http'
import type net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient } from '../src/api/client.js'
import { MAX_BODY_BYTES } from '../src/api/protocol.js'
import { controlServer, type ControlServer } from '../src/api/server.js'
import type { JobView, NodeEvent, NodeStatus } from '../src/types.js'
import { FakeEngine, until } from './api-fake-engine.js'

const TOKEN = 'test-token-0123456789'

let dir: string
let socketPath: string
let engine: FakeEngine
let server: ControlServer
let client: ApiClient

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshq-api-'))
  socketPath = join(dir, 'meshq.sock')
  engine = new FakeEngine()
  server = controlServer({ engine, socketPath, tcp: { host: '127.0.0.1', port: 0, token: TOKEN } })
  await server.start()
  client = new ApiClient(socketPath)
})

afterAll(async () => {
  await server?.stop()
  await rm(dir, { recursive: true, force: true })
})

/** A raw request on the unix socket (or TCP), for what ApiClient would not send. */
async function raw (options: http.RequestOptions, body?: string | Buffer): Promise<{ status: number, json: any }> {
  return await new Promise((resolve, reject) => {
    const req = http.request({ socketPath, ...options }, res => {
      const chunks: Buffer[] = []
      res.on('data', c => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        resolve({ status: res.statusCode ?? 0, json: text === '' ? undefined : JSON.parse(text) })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

async function submit (job: Record<string, unknown>): Promise<JobView> {
  const { jobs } = await client.request<{ jobs: JobView[] }>('POST', '/jobs', { jobs: [job] })
  return jobs[0]
}

describe('control API', () => {
  it('serves the status', async () => {
    const status = await client.request<NodeStatus>('GET', '/status')
    expect(status.clusterId).toBe('c1')
  })

  it('submits, gets and lists jobs', async () => {
    const a = await submit({ cmd: ['echo', 'a'], group: 'g1' })
    const b = await submit({ cmd: ['echo', 'b'], group: 'g1' })
    await submit({ cmd: ['echo', 'c'], group: 'g2' })
    expect(a.cmd).toEqual(['echo', 'a'])
    expect((await client.request<JobView>('GET', `/jobs/${a.id}`)).id).toBe(a.id)
    const { jobs } = await client.request<{ jobs: JobView[] }>('GET', '/jobs?group=g1')
    expect(jobs.map(j => j.id)).toEqual([b.id, a.id])
    const limited = await client.request<{ jobs: JobView[] }>('GET', '/v1/jobs?group=g1&limit=1')
    expect(limited.jobs.map(j => j.id)).toEqual([b.id])
  })

  it('kills, retries and removes by selector', async () => {
    const job = await submit({ cmd: ['true'], group: 'sel' })
    const killed = await client.request<{ jobs: JobView[] }>('POST', '/jobs/kill', { group: 'sel' })
    expect(killed.jobs.map(j => [j.id, j.state])).toEqual([[job.id, 'killed']])
    const retried = await client.request<{ jobs: JobView[] }>('POST', '/jobs/retry', { ids: [job.id] })
    expect(retried.jobs[0].state).toBe('ready')
    expect(await client.request('POST', '/jobs/rm', { ids: [job.id] })).toEqual({ ids: [job.id] })
    await expect(client.request('POST', '/jobs/rm', {})).rejects.toMatchObject({ name: 'BadRequestError', status: 400 })
  })

  it('answers the states of many jobs in the order asked; a body without ids is a bad request', async () => {
    const a = await submit({ cmd: ['true'] })
    const b = await submit({ cmd: ['true'] })
    expect(await client.request('POST', '/jobs/states', { ids: [b.id, a.id, b.id] })).toEqual({
      jobs: [{ id: b.id, state: 'ready' }, { id: a.id, state: 'ready' }, { id: b.id, state: 'ready' }]
    })
    for (const body of [{}, { ids: [] }, { ids: 'x' }, { ids: [1] }]) {
      await expect(client.request('POST', '/jobs/states', body)).rejects.toMatchObject({ name: 'BadRequestError', status: 400 })
    }
    await expect(client.request('POST', '/jobs/states', { ids: ['nope'] })).rejects.toMatchObject({ name: 'JobNotFoundError', status: 404 })
  })

  it('passes pause, resume and drain on', async () => {
    await client.request('POST', '/groups/a%2Fb/pause', { forMs: 5000 })
    await client.request('POST', '/groups/a%2Fb/resume', {})
    await client.request('POST', '/drain', { peer: 'p1' })
    expect(engine.calls.slice(-3)).toEqual([
      { method: 'pause', args: ['a/b', 5000] },
      { method: 'resume', args: ['a/b'] },
      { method: 'drain', args: ['p1'] }
    ])
  })

  it('serves stats and peers', async () => {
    expect((await client.request<{ states: Record<string, number> }>('GET', '/stats')).states).toHaveProperty('ready')
    const { peers } = await client.request<{ peers: Array<{ self: boolean }> }>('GET', '/peers')
    expect(peers[0].self).toBe(true)
  })

  it('answers errors as {error: {name, message}} with their status', async () => {
    const answer = await raw({ method: 'GET', path: '/v1/jobs/nope' })
    expect(answer).toEqual({ status: 404, json: { error: { name: 'JobNotFoundError', message: 'no such job: nope' } } })
    await expect(client.request('GET', '/jobs/nope')).rejects.toMatchObject({ name: 'JobNotFoundError', message: 'no such job: nope', status: 404 })
    expect((await raw({ method: 'GET', path: '/v1/nowhere' })).json.error.name).toBe('NotFoundError')
    expect((await raw({ method: 'DELETE', path: '/v1/jobs' })).status).toBe(405)
    expect((await raw({ method: 'GET', path: '/v1/jobs?state=bogus' })).status).toBe(400)
  })

  it('refuses an invite that would outlive 365 days with 400', async () => {
    // 1e300 ms once reached the engine, which wrote the invite and then failed to show its expiry
    for (const ttlMs of [1e300, 365 * 24 * 3600 * 1000 + 1]) {
      await expect(client.request('POST', '/invites', { ttlMs })).rejects.toMatchObject({ name: 'UsageError', message: expect.stringMatching(/^ttlMs must be at most/), status: 400 })
    }
    expect(await client.request('POST', '/invites', { ttlMs: 365 * 24 * 3600 * 1000 })).toMatchObject({ id: 'inv1' })
  })

  it('answers 500 with the name and message of an unexpected error', async () => {
    engine.failNext = new TypeError('boom')
    await expect(submit({ cmd: ['x'] })).rejects.toMatchObject({ name: 'TypeError', message: 'boom', status: 500 })
  })

  it('rejects bad JSON with 400 and keeps serving', async () => {
    const answer = await raw({ method: 'POST', path: '/v1/jobs', headers: { 'content-type': 'application/json' } }, '{"jobs": [')
    expect(answer.status).toBe(400)
    expect(answer.json.error.name).toBe('BadRequestError')
    expect(answer.json.error.message).toMatch(/not valid JSON/)
    expect((await raw({ method: 'POST', path: '/v1/jobs' }, '[1]')).status).toBe(400)
    expect((await raw({ method: 'POST', path: '/v1/jobs' }, '{"jobs": 3}')).status).toBe(400)
    expect((await client.request<NodeStatus>('GET', '/status')).id).toBeTruthy()
  })

  it('rejects a body over 16 MiB with 413, declared or chunked', async () => {
    const big = { jobs: [{ cmd: ['x'], name: 'a'.repeat(MAX_BODY_BYTES) }] }
    await expect(client.request('POST', '/jobs', big)).rejects.toMatchObject({ name: 'PayloadTooLargeError', status: 413 })
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = http.request({ socketPath, method: 'POST', path: '/v1/jobs' }, res => { res.resume(); resolve(res.statusCode ?? 0) })
      req.on('error', reject)
      const chunk = Buffer.alloc(1024 * 1024, 'a')
      req.write('{"name": "') // a JSON object so far: refused for its size, not its shape
      for (let i = 0; i < 17; i++) req.write(chunk)
      req.end()
    })
    expect(chunked).toBe(413)
    expect(engine.jobs.size).toBeGreaterThan(0)
    expect((await client.request<NodeStatus>('GET', '/status')).id).toBeTruthy()
  })

  it('streams events as NDJSON and unsubscribes when the client goes', async () => {
    const controller = new AbortController()
    const events = await client.openEvents(controller.signal)
    expect(engine.listeners.size).toBe(1)
    const job = await submit({ cmd: ['echo', 'event'] })
    let first: NodeEvent | undefined
    for await (const event of events) {
      first = event
      break
    }
    expect(first).toMatchObject({ type: 'job', job: { id: job.id } })
    controller.abort()
    await until(() => engine.listeners.size === 0, 5000, 'the unsubscribe')
  })

  it('streams a log and ends a follow when the log ends', async () => {
    const job = await submit({ cmd: ['echo'] })
    engine.start(job.id)
    engine.write(job.id, 'stdout', 'one\n')
    const received: string[] = []
    const reading = (async () => {
      for await (const chunk of client.stream(`/jobs/${job.id}/logs?stream=stdout&follow=1`)) {
        received.push(Buffer.from(chunk).toString())
      }
    })()
    await until(() => received.length === 1, 5000, 'the first chunk')
    engine.write(job.id, 'stdout', 'two\n')
    engine.write(job.id, 'stderr', 'not this\n')
    engine.finish(job.id, 'done', 0)
    await reading
    expect(received.join('')).toBe('one\ntwo\n')
    const chunks: Uint8Array[] = []
    for await (const chunk of client.stream(`/jobs/${job.id}/logs?stream=stderr`)) chunks.push(chunk)
    expect(Buffer.concat(chunks).toString()).toBe('not this\n')
    await expect(async () => { for await (const _ of client.stream('/jobs/nope/logs')) ; }).rejects.toMatchObject({ name: 'JobNotFoundError' })
  })

  it('aborts the log reader when the client disconnects', async () => {
    const job = await submit({ cmd: ['sleep'] })
    engine.start(job.id)
    engine.write(job.id, 'stdout', 'x')
    const aborted = engine.abortedReaders
    const controller = new AbortController()
    const reading = (async () => {
      for await (const _ of client.stream(`/jobs/${job.id}/logs?follow=1`, controller.signal)) controller.abort()
    })()
    await expect(reading).rejects.toMatchObject({ name: 'AbortError' })
    await until(() => engine.abortedReaders === aborted + 1 && engine.openReaders === 0, 5000, 'the reader to stop')
  })

  it('requires the bearer token on TCP', async () => {
    const address = server.tcpAddress?.()
    expect(address?.host).toBe('127.0.0.1')
    const { port } = address as { port: number }
    const noToken = await raw({ socketPath: undefined, host: '127.0.0.1', port, path: '/v1/status' })
    expect(noToken).toMatchObject({ status: 401, json: { error: { name: 'UnauthorizedError' } } })
    const wrong = new ApiClient({ host: '127.0.0.1', port, token: 'wrong' })
    await expect(wrong.request('GET', '/status')).rejects.toMatchObject({ name: 'UnauthorizedError', status: 401 })
    const right = new ApiClient({ host: '127.0.0.1', port, token: TOKEN })
    expect((await right.request<NodeStatus>('GET', '/status')).clusterId).toBe('c1')
  })

  it('makes the socket private (0600)', async () => {
    expect((await stat(socketPath)).mode & 0o777).toBe(0o600)
  })

  it('replaces a stale socket file but not a live one', async () => {
    await expect(controlServer({ engine, socketPath }).start()).rejects.toMatchObject({ name: 'HomeLockedError' })
    const stale = join(dir, 'stale.sock')
    await writeFile(stale, '')
    const second = controlServer({ engine, socketPath: stale })
    await second.start()
    expect((await new ApiClient(stale).request<NodeStatus>('GET', '/status')).clusterId).toBe('c1')
    await second.stop()
    await expect(stat(stale)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('says the node is unreachable when nothing listens', async () => {
    const nowhere = new ApiClient(join(dir, 'missing', 'meshq.sock'))
    await expect(nowhere.request('GET', '/status')).rejects.toMatchObject({
      name: 'NodeUnreachableError',
      message: `cannot reach the meshq node at ${join(dir, 'missing')}: is \`meshq node\` running?`
    })
  })
})

describe('ApiClient connections', () => {
  /**
   * A node's server closes a connection that has been idle for its keepAliveTimeout (5 s). A client
   * whose event loop was busy at that moment has not yet seen the close: a kept-alive socket would
   * be handed out again and the request would fail with EPIPE or ECONNRESET (nodejs/node#47130).
   * Here the server closes its side at once, before the client's loop can notice.
   */
  it('does not send a request on a connection the server closed while it was idle', async () => {
    const path = join(dir, 'idle.sock')
    const connections = new Set<net.Socket>()
    const idleServer = http.createServer((req, res) => {
      if (req.url === '/v1/events') res.end('{"type":"peer"}\n')
      else res.end('{"ok":true}')
    })
    idleServer.on('connection', socket => connections.add(socket))
    await new Promise<void>(resolve => idleServer.listen(path, resolve))
    try {
      const idle = new ApiClient(path)
      const afterIdleClose = async <T>(call: () => Promise<T>): Promise<T> => {
        await idle.request('GET', '/status')
        for (const socket of connections) socket.destroy()
        return await call()
      }
      expect(await afterIdleClose(async () => await idle.request('GET', '/status'))).toEqual({ ok: true })
      const first = await afterIdleClose(async () => { for await (const event of await idle.openEvents()) return event })
      expect(first).toEqual({ type: 'peer' })
    } finally {
      idleServer.closeAllConnections()
      await new Promise(resolve => idleServer.close(resolve))
    }
  })
})
