import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { json, meshq, ok, startNode } from './cluster.js'
import type { TestNode } from './cluster.js'
import { tempDir, waitFor } from './helpers.js'
import { agentString, incompatibility, parseAgent } from '../src/net/handshake.js'
import type { JobView, PeerView } from '../src/types.js'

// MESHQ_TEST_PROTOCOL makes a node announce another protocol version: it stands for another build
const nodes: TestNode[] = []
let founder: TestNode
beforeAll(async () => { nodes.push(founder = await startNode({ env: { MESHQ_TEST_PROTOCOL: '1.0' } })) })
afterAll(async () => { for (const n of nodes) await n.cleanup() })

async function joiner (protocol: string): Promise<TestNode> {
  const token = (await ok(founder.home, ['invite'])).trim()
  const node = await startNode({ args: ['--join', token], env: { MESHQ_TEST_PROTOCOL: protocol } })
  nodes.push(node)
  return node
}

describe('the version handshake', () => {
  it('agents name the meshq and protocol versions', () => {
    const agent = agentString({ major: 1, minor: 2 })
    expect(parseAgent(agent)?.protocol).toEqual({ major: 1, minor: 2 })
    expect(incompatibility({ major: 1, minor: 0 }, agent)).toBeUndefined()
    expect(incompatibility({ major: 2, minor: 0 }, agent)).toMatch(/speaks meshq protocol 1\.2 .* this node speaks 2\.0/)
    expect(incompatibility({ major: 1, minor: 0 }, 'js-libp2p/3.0.0')).toMatch(/not a meshq node/)
  })

  it('nodes of adjacent minor versions work together', async () => {
    const newer = await joiner('1.1')
    await waitFor(async () => (await json<PeerView[]>(founder.home, ['peers'])).filter(p => p.state === 'up').length === 2, { what: 'both nodes up' })
    const id = (await ok(newer.home, ['sub', '--', 'true'])).trim()
    await waitFor(async () => (await json<JobView>(founder.home, ['show', id])).state === 'done', { what: 'the job done, seen on the older node' })
  })

  it('a node of another major version is refused with a clear message', async () => {
    const token = (await ok(founder.home, ['invite'])).trim()
    const home = await tempDir()
    const result = await meshq(home.dir, ['node', '--listen', '/ip4/127.0.0.1/tcp/0', '--join', token], { env: { MESHQ_TEST_PROTOCOL: '2.0' }, timeout: 60_000 })
    await home.cleanup()
    expect(result.code).not.toBe(0)
    expect(result.stderr).toMatch(/refusing peer \S+: it speaks meshq protocol 1\.0 .* this node speaks 2\.0: upgrade one of them/)
    await waitFor(() => /refusing peer \S+: it speaks meshq protocol 2\.0/.test(founder.output()), { what: 'the founder to log the refusal' })
    expect((await json<PeerView[]>(founder.home, ['peers'])).length).toBe(2)
  })
})

describe('job arrays across protocol versions', () => {
  it('refuses an array while a connected node speaks 2.1 (it would run the array as one job), and submits it once that node is gone', async () => {
    const newer = await startNode({ env: { MESHQ_TEST_PROTOCOL: '2.2' } })
    nodes.push(newer)
    const older = await startNode({ args: ['--join', (await ok(newer.home, ['invite'])).trim()], env: { MESHQ_TEST_PROTOCOL: '2.1' } })
    nodes.push(older)
    await waitFor(async () => (await json<PeerView[]>(newer.home, ['peers'])).filter(p => p.state === 'up').length === 2, { what: 'both nodes up' })
    const refused = await meshq(newer.home, ['sub', '--array', '1-3', '--', 'true'])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/job arrays need every node at protocol 2\.2 .* speaks 2\.1 and would run the array as one job/)
    expect(await json<JobView[]>(newer.home, ['ls'])).toEqual([])
    await ok(newer.home, ['sub', '--', 'true']) // single jobs still go
    await older.kill('SIGKILL')
    await waitFor(async () => (await meshq(newer.home, ['sub', '--array', '1-3', '--', 'true'])).code === 0 || undefined, { what: 'the array to be accepted once the older node is gone', timeout: 60_000 })
  }, 120_000)
})
