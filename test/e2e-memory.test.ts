import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { json, meshq, ok, startNode } from './cluster.js'
import type { TestNode } from './cluster.js'
import { waitFor } from './helpers.js'
import type { JobView, PeerView } from '../src/types.js'

const GiB = 2 ** 30
let small: TestNode
let large: TestNode
beforeAll(async () => { small = await startNode({ args: ['--mem', '1G'] }) })
afterAll(async () => {
  for (const n of [large, small]) await n?.cleanup()
})

const show = async (id: string): Promise<JobView> => await json<JobView>(small.home, ['show', id])
const sub = async (args: string[]): Promise<string> => (await ok(small.home, ['sub', ...args])).trim()

describe('memory as a placement resource', () => {
  it('a node with --mem 1G leaves a --mem 2G job waiting, saying why, while a 512M job runs', async () => {
    const big = await sub(['--mem', '2G', '--', 'true'])
    const fits = await sub(['--mem', '512M', '--', 'true'])
    await waitFor(async () => (await show(fits)).state === 'done', { what: 'the job that fits to run' })
    const waiting = await show(big)
    expect(waiting.state).toBe('ready')
    expect(waiting.reason).toBe('needs 2G of memory; no live node has that much free (the most is 1G)')
    expect(waiting.attempts).toEqual([])
    expect((await json<JobView[]>(small.home, ['ls'])).find(j => j.id === big)?.reason).toBe(waiting.reason)
    await ok(small.home, ['kill', big])
  })

  it('nodes say in their status how much memory they have free for --mem', async () => {
    const token = (await ok(small.home, ['invite'])).trim()
    large = await startNode({ args: ['--mem', '3G', '--join', token] })
    // each node hears the other's status in its own time: wait for both views
    const told = async (node: TestNode): Promise<boolean> => (await json<PeerView[]>(node.home, ['peers'])).every(p => p.state === 'up' && p.memFree !== undefined)
    await waitFor(async () => await told(small) && await told(large), { what: 'both nodes up, each saying what memory it has' })
    const peers = await json<PeerView[]>(large.home, ['peers'])
    expect(peers.map(p => p.memFree).sort()).toEqual([GiB, 3 * GiB])
    expect(await ok(small.home, ['peers'])).toMatch(/MEM FREE[\s\S]*\b1G\b/)
  })

  it('a job runs only where its --mem fits, and says so when no node has enough', async () => {
    const tooBig = await sub(['--mem', '4G', '--', 'true'])
    const big = await sub(['--mem', '2G', '--', 'true'])
    const fits = await sub(['--mem', '512M', '--', 'true'])
    await waitFor(async () => (await show(big)).state === 'done' && (await show(fits)).state === 'done', { what: 'the jobs that fit to run' })
    expect((await show(big)).node).toBe((await json<PeerView[]>(large.home, ['peers'])).find(p => p.self)?.id)
    const reason = 'needs 4G of memory; no live node has that much free (the most is 3G)'
    await waitFor(async () => (await show(tooBig)).reason === reason, { what: `the reason to be '${reason}'` })
    const waiting = await show(tooBig)
    expect(waiting.state).toBe('ready')
    expect(waiting.attempts).toEqual([])
    await ok(small.home, ['kill', tooBig])
  })

  it('a node counts the --mem of the jobs it runs: one that does not fit beside them waits for them to end', async () => {
    const first = await sub(['--mem', '2G', '--', 'sleep', '5'])
    await waitFor(async () => (await show(first)).state === 'running', { what: 'the first job to start' })
    await waitFor(async () => (await json<PeerView[]>(small.home, ['peers'])).find(p => !p.self)?.memFree === GiB, { what: 'the large node to say 1G is left' })
    const second = await sub(['--mem', '2G', '--', 'true'])
    await waitFor(async () => (await show(second)).state === 'done', { what: 'the second job to run after the first', timeout: 60_000 })
    const [a, b] = [await show(first), await show(second)]
    expect(a.state).toBe('done')
    expect(Date.parse(b.startedAt as string)).toBeGreaterThanOrEqual(Date.parse(a.endedAt as string))
  })

  it('refuses a --mem for the node that is not a size (exit 2)', async () => {
    const result = await meshq(small.home, ['node', '--mem', 'lots'])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/bad --mem: "lots"/)
  })
})
