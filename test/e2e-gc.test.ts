import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { json, meshq, ok, startNode } from './cluster.js'
import type { TestNode } from './cluster.js'
import { waitFor } from './helpers.js'
import type { GcResult, JobView } from '../src/types.js'

// segments of 5 jobs, sealed 50 ms after they settle: history to collect without 1000s of jobs
const env = { MESHQ_TEST_SEGMENT_CAPACITY: '5', MESHQ_TEST_SEAL_DELAY_MS: '50' }
let a: TestNode
let b: TestNode
beforeAll(async () => {
  a = await startNode({ env })
  b = await startNode({ env, args: ['--join', (await ok(a.home, ['invite'])).trim()] })
})
afterAll(async () => {
  for (const n of [a, b]) await n.cleanup()
})

const exists = async (path: string): Promise<boolean> => await access(path).then(() => true, () => false)
const ids = async (node: TestNode): Promise<string[]> => (await json<JobView[]>(node.home, ['ls', '--all'])).map(j => j.id).sort()

describe('meshq gc', () => {
  it('drops finished history on every node, except what an unfinished job waits for', async () => {
    const jobs = (await ok(a.home, ['sub', '--batch'], { input: Array.from({ length: 10 }, (_, i) => `{"cmd":["echo","${i}"]}`).join('\n') })).trim().split('\n')
    expect((await meshq(a.home, ['wait', ...jobs], { timeout: 120_000 })).code).toBe(0)
    // a paused job that waits for the first job keeps that job's segment
    await ok(a.home, ['pause', 'hold'])
    const waiter = (await ok(a.home, ['sub', '--group', 'hold', '--after', jobs[0], '--', 'true'])).trim()
    await waitFor(async () => (await meshq(b.home, ['show', waiter])).code === 0, { what: 'the waiting job on the other node' })

    const recent = await json<GcResult>(b.home, ['gc', '--older-than', '1h'])
    expect(recent.jobs).toBe(0)
    // both segments are sealed on b; one of them is awaited
    const preview = await waitFor(async () => {
      const result = await json<GcResult>(b.home, ['gc', '--older-than', '0s', '--dry-run'])
      return result.segments.length === 1 ? result : undefined
    }, { what: 'the second segment to be sealed and collectable' })
    expect(preview).toMatchObject({ jobs: 5, dryRun: true })
    expect(await ids(b)).toHaveLength(11)

    await b.kill('SIGTERM') // down while the history is dropped: it must learn it when back
    const dropped = await json<GcResult>(a.home, ['gc', '--older-than', '0s'])
    expect(dropped).toMatchObject({ segments: preview.segments, jobs: 5, dryRun: false })
    const kept = [...jobs.slice(0, 5), waiter].sort()
    expect(await ids(a)).toEqual(kept)
    expect((await meshq(a.home, ['show', jobs[7]])).code).toBe(1)

    b = await startNode({ home: b.home, env })
    await waitFor(async () => JSON.stringify(await ids(b)) === JSON.stringify(kept), { what: 'the restarted node to drop the segment too' })
    // output goes with the history, wherever the job ran
    const outputOf = async (id: string): Promise<boolean[]> => await Promise.all([a, b].map(async n => await exists(join(n.home, 'output', id))))
    await waitFor(async () => (await outputOf(jobs[7])).every(e => !e), { what: 'the dropped job\'s output gone everywhere' })
    expect((await outputOf(jobs[0])).some(Boolean)).toBe(true)
    // and neither node brings the segment back to the other
    await ok(b.home, ['resume', 'hold'])
    expect((await meshq(b.home, ['wait', waiter], { timeout: 60_000 })).code).toBe(0)
    expect(await ids(a)).toEqual(kept)
    expect(await ids(b)).toEqual(kept)
  })

  it('needs --older-than', async () => {
    const result = await meshq(a.home, ['gc'])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/--older-than/)
  })
})
