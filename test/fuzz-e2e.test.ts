/**
 * Fuzzing a real node: random requests at every route of its control API, and random messages on
 * every protocol it serves to peers (join, logs, heads, sync, gossip) from a member with bad intent.
 * Requests that once found a bug are replayed from test/fuzz-corpus/api.json.
 * The node must answer every request without a server error, never log an internal error (an
 * exception that escaped a handler), and still work afterwards.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import { json, meshq, startNode } from './cluster.js'
import type { TestNode } from './cluster.js'
import { ROUTES, answered, apiRequest, bodyFor } from './fuzz-api-requests.js'
import { createIntruder, joinWith, tokenOf, tryJoin } from './intruder.js'
import { HEADS_PROTOCOL } from '../src/net/heads.js'
import { LOGS_PROTOCOL } from '../src/net/logs.js'
import type { MeshqLibp2p } from '../src/net/p2p.js'
import { SYNC_PROTOCOL } from '../src/net/sync.js'
import type { JobView } from '../src/types.js'

let node: TestNode
let host: MeshqLibp2p | undefined
// no slots: nothing a fuzzed submit asks for ever runs
beforeAll(async () => { node = await startNode({ args: ['--slots', '0'] }) })
afterAll(async () => {
  await host?.stop()
  await node?.cleanup()
})

/** The node is up, answers, and never let an exception escape a handler. */
async function stillWell (): Promise<void> {
  expect(node.process.exitCode).toBe(null)
  expect(node.output()).not.toMatch(/internal error/)
  expect((await meshq(node.home, ['ls'])).code).toBe(0)
  const id = (await meshq(node.home, ['sub', '--', 'true'])).stdout.trim()
  expect((await json<JobView>(node.home, ['show', id])).state).toBe('ready')
}

describe('fuzzing a real node', () => {
  it('answers random requests at every route of its API, never with a server error', async () => {
    const socketPath = join(node.home, 'meshq.sock')
    await fc.assert(fc.asyncProperty(fc.constantFrom(...ROUTES).chain(route => bodyFor(route)), async request => {
      if (node.process.exitCode !== null) throw new Error(`the node exited:\n${node.output()}`)
      answered(await apiRequest({ socketPath }, request))
    }), { numRuns: 1500 })
    await stillWell()
  })

  it('replays the corpus of requests that found bugs', async () => {
    const corpus = JSON.parse(await readFile(join(fileURLToPath(new URL('.', import.meta.url)), 'fuzz-corpus', 'api.json'), 'utf8')) as Array<{ finding: string, method: string, path: string, body: unknown, status: number, message?: string }>
    for (const { method, path, body, status, message } of corpus) {
      const answer = await apiRequest({ socketPath: join(node.home, 'meshq.sock') }, { method, path, body: JSON.stringify(body) })
      expect(answer.status).toBe(status)
      if (message !== undefined) expect(answer.json.error.message).toMatch(new RegExp(message))
    }
  })

  it('takes random join, logs, heads and sync messages and gossip from a member without harm', async () => {
    const token = await tokenOf(node)
    host = await createIntruder(token)
    await joinWith(host, token) // a member: its messages reach every handler
    const target = multiaddr(token.addrs[0])
    const payload = fc.oneof(fc.uint8Array({ maxLength: 256 }), fc.jsonValue().map(v => new TextEncoder().encode(JSON.stringify(v))))
    const joinRequest = fc.record({ invite: fc.anything(), secret: fc.anything(), addrs: fc.anything() }, { requiredKeys: [] })
    const logsRequest = fc.record({ job: fc.oneof(fc.constantFrom('aaaaaa-1', '../x'), fc.string()), epoch: fc.anything(), stream: fc.constantFrom('stdout', 'stderr', 'x'), follow: fc.boolean() }, { requiredKeys: [] })
    const send = async (protocol: string, bytes: Uint8Array): Promise<void> => {
      const stream = lpStream(await (host as MeshqLibp2p).dialProtocol(target, protocol, { signal: AbortSignal.timeout(10_000) }))
      await stream.write(bytes).catch(() => {})
      await stream.read({ signal: AbortSignal.timeout(2000) }).catch(() => {})
      stream.unwrap().abort(new Error('done'))
    }
    const { pubsub } = host.services
    const topics = [`meshq/${token.cluster}/claims/2`, `meshq/${token.cluster}/status/1`]
    for (const topic of topics) pubsub.subscribe(topic)
    await fc.assert(fc.asyncProperty(
      fc.constantFrom(SYNC_PROTOCOL, HEADS_PROTOCOL, LOGS_PROTOCOL, 'join', 'gossip'),
      payload, joinRequest, logsRequest, fc.constantFrom(...topics),
      async (kind, bytes, joining, logs, topic) => {
        if (kind === 'join') await tryJoin(host as MeshqLibp2p, { ...token, ...joining } as typeof token).catch(() => {})
        else if (kind === 'gossip') await pubsub.publish(topic, bytes).catch(() => {})
        else await send(kind, kind === LOGS_PROTOCOL && bytes.length % 2 === 0 ? new TextEncoder().encode(JSON.stringify(logs)) : bytes)
      }
    ), { numRuns: 300 })
    await stillWell()
  })
})
