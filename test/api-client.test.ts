/**
 * The typed client against the real server: every route of the table, called through its client
 * method, reaches the engine method of the same name with the same arguments.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiClient } from '../src/api/client.js'
import type { Engine } from '../src/api/engine.js'
import { NodeClient } from '../src/api/node-client.js'
import { ROUTES, routePath, type RouteName } from '../src/api/routes.js'
import { controlServer, type ControlServer } from '../src/api/server.js'
import type { JobView } from '../src/types.js'
import { FakeEngine } from './api-fake-engine.js'

/** Names that need encoding in a path or a query. */
const GROUP = 'a/b c?%#'
const PEER = '12D3/odd peer'

let dir: string
let server: ControlServer
let client: NodeClient
let calls: Array<[string, unknown[]]>
let job: JobView

/** The engine, recording every method called on it with its arguments. */
function recorded (engine: FakeEngine): Engine {
  return new Proxy(engine, {
    get (target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        calls.push([String(key), args])
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    }
  })
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'meshq-client-'))
  const engine = new FakeEngine()
  server = controlServer({ engine: recorded(engine), socketPath: join(dir, 'meshq.sock') })
  await server.start()
  client = new NodeClient(new ApiClient(join(dir, 'meshq.sock')))
  ;[job] = await engine.submit([{ cmd: ['echo', 'hi'], group: GROUP }])
  engine.start(job.id)
  engine.write(job.id, 'stderr', 'to stderr\n')
})

afterAll(async () => {
  await server?.stop()
  await rm(dir, { recursive: true, force: true })
})

async function drain (stream: AsyncIterable<unknown>): Promise<unknown[]> {
  const items: unknown[] = []
  for await (const item of stream) items.push(item)
  return items
}

/** One case per route (the compiler wants them all): the client's call, and what the engine must see. */
function cases (): Record<RouteName, { call: () => Promise<unknown>, engine: [string, unknown[]] }> {
  return {
    status: { call: async () => await client.status(), engine: ['status', []] },
    submit: { call: async () => await client.submit([{ cmd: ['true'], group: GROUP }]), engine: ['submit', [[{ cmd: ['true'], group: GROUP }], expect.anything()]] },
    list: { call: async () => await client.list({ group: GROUP, state: 'running', limit: 3 }), engine: ['list', [{ group: GROUP, state: 'running', limit: 3 }]] },
    kill: { call: async () => await client.kill({ group: 'no such group' }), engine: ['kill', [{ group: 'no such group' }]] },
    retry: { call: async () => await client.retry({ group: GROUP }), engine: ['retry', [{ group: GROUP }]] },
    remove: { call: async () => await client.remove({ group: 'no such group' }), engine: ['remove', [{ group: 'no such group' }]] },
    modify: { call: async () => await client.modify({ ids: [job.id] }, { pri: 3 }), engine: ['modify', [{ ids: [job.id] }, { pri: 3 }]] },
    states: { call: async () => await client.states([job.id]), engine: ['states', [[job.id]]] },
    get: { call: async () => await client.get(job.id), engine: ['get', [job.id]] },
    catchUp: { call: async () => await client.catchUp(), engine: ['catchUp', []] },
    readLog: { call: async () => await drain(client.readLog(job.id, 'stderr', { follow: false })), engine: ['readLog', [job.id, 'stderr', expect.objectContaining({ follow: false })]] },
    pause: { call: async () => { await client.pause(GROUP, 5000) }, engine: ['pause', [GROUP, 5000]] },
    resume: { call: async () => { await client.resume(GROUP) }, engine: ['resume', [GROUP]] },
    limit: { call: async () => { await client.limit(GROUP, null) }, engine: ['limit', [GROUP, null]] },
    limits: { call: async () => await client.limits(), engine: ['limits', []] },
    gc: { call: async () => await client.gc(60_000, true), engine: ['gc', [60_000, true]] },
    drain: { call: async () => { await client.drain(PEER) }, engine: ['drain', [PEER]] },
    stats: { call: async () => await client.stats(), engine: ['stats', []] },
    peers: { call: async () => await client.peers(), engine: ['peers', []] },
    evict: { call: async () => { await client.evict(PEER) }, engine: ['evict', [PEER]] },
    connect: { call: async () => await client.connect('/ip4/127.0.0.1/tcp/1'), engine: ['connect', ['/ip4/127.0.0.1/tcp/1']] },
    invite: { call: async () => await client.invite({ ttlMs: 1000, uses: 2 }), engine: ['invite', [{ ttlMs: 1000, uses: 2 }]] },
    invites: { call: async () => await client.invites(), engine: ['invites', []] },
    revokeInvite: { call: async () => { await client.revokeInvite('inv/1') }, engine: ['revokeInvite', ['inv/1']] },
    events: {
      call: async () => {
        const stop = new AbortController()
        await client.openEvents(stop.signal)
        stop.abort()
      },
      engine: ['subscribe', [expect.any(Function)]]
    },
    jobEvents: { call: async () => await drain(client.jobEvents({ kinds: ['failed', 'done'], limit: 5, follow: false })), engine: ['jobEvents', [{ kinds: ['failed', 'done'], limit: 5, follow: false }]] }
  }
}

describe('the typed API client', () => {
  it.each(Object.keys(ROUTES) as RouteName[])('%s reaches the engine method of its name with its arguments', async name => {
    calls = []
    const { call, engine } = cases()[name]
    await call()
    expect(calls).toContainEqual(engine)
  })

  it('answers what the engine answers', async () => {
    expect(await client.get(job.id)).toMatchObject({ id: job.id, group: GROUP })
    expect(await client.list({ group: GROUP, limit: 1 })).toHaveLength(1)
    expect(await drain(client.readLog(job.id, 'stderr', { follow: false }))).toEqual([Buffer.from('to stderr\n')])
    await expect(client.get('no/such job')).rejects.toMatchObject({ name: 'JobNotFoundError', message: 'no such job: no/such job' })
  })

  it('builds paths from the route table: parameters encoded, empty query values left out', () => {
    expect(routePath('get', { id: 'a/b c' })).toBe('/jobs/a%2Fb%20c')
    expect(routePath('readLog', { id: 'x' }, { stream: 'stdout', follow: true })).toBe('/jobs/x/logs?stream=stdout&follow=1')
    expect(routePath('list', {}, { group: undefined, limit: 2, follow: false })).toBe('/jobs?limit=2')
    expect(ROUTES.get.path).toBe('/jobs/:id')
  })
})
