import { afterEach, describe, expect, it } from 'vitest'
import { startNode } from '../src/node/run.js'
import type { RunningNode } from '../src/node/run.js'
import { tempDir, waitFor } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of cleanups.splice(0)) await c() })

async function node (home: string): Promise<RunningNode> {
  const n = await startNode({ home, listen: [], tags: [], slots: 2 }, { segmentCapacity: 5, sealDelayMs: 20 })
  cleanups.unshift(async () => await n.stop())
  return n
}

describe('sealed segments', () => {
  it('leave memory once finished, and listings still find their jobs, also after a restart', async () => {
    const { dir, cleanup } = await tempDir()
    cleanups.push(cleanup)
    const first = await node(dir)
    const jobs = await first.engine.submit(Array.from({ length: 12 }, (_, i) => ({ cmd: ['sh', '-c', `exit ${i === 3 ? 1 : 0}`], cwd: '/' })))
    const sealedCount = (): number => first.ledger.segmentList().filter(s => s.sealed).length
    await waitFor(async () => sealedCount() === 2 && (await first.engine.list({})).every(j => j.state === 'done' || j.state === 'failed'), { what: 'all jobs to end and two full segments to be sealed' })
    const listed = await first.engine.list({})
    expect(listed.map(j => j.id)).toEqual(jobs.map(j => j.id).reverse())
    expect(listed.filter(j => j.state === 'done')).toHaveLength(11)
    const failed = await first.engine.get(jobs[3].id)
    expect(failed).toMatchObject({ state: 'failed', exitCode: 1 })
    expect((await first.engine.list({ state: 'failed' })).map(j => j.id)).toEqual([jobs[3].id])

    // acting on a sealed job loads its segment back
    await first.engine.retry({ ids: [jobs[3].id] })
    expect(first.ledger.doc(jobs[3].id.split('-')[0])).toBeDefined()
    await waitFor(async () => (await first.engine.get(jobs[3].id)).attempts.length === 2, { what: 'the retried job to run again' })

    await first.stop()
    const second = await node(dir)
    expect((await second.engine.list({})).map(j => j.id)).toEqual(jobs.map(j => j.id).reverse())
  })

  it('answer states and kill without loading them back: kill leaves a finished one alone', async () => {
    const { dir, cleanup } = await tempDir()
    cleanups.push(cleanup)
    const n = await node(dir)
    const jobs = await n.engine.submit(Array.from({ length: 5 }, (_, i) => ({ cmd: ['sh', '-c', `exit ${i === 3 ? 1 : 0}`], cwd: '/' })))
    const segment = jobs[0].id.split('-')[0]
    await waitFor(() => n.ledger.segmentList().some(s => s.id === segment && s.sealed), { what: 'the segment to be sealed', timeout: 60_000 })
    expect(await n.engine.states([jobs[3].id, jobs[0].id])).toEqual([{ id: jobs[3].id, state: 'failed' }, { id: jobs[0].id, state: 'done' }])
    const [sleeper] = await n.engine.submit([{ cmd: ['sleep', '300'], cwd: '/' }])
    expect((await n.engine.kill({ ids: [jobs[0].id, sleeper.id] })).map(j => j.id)).toEqual([sleeper.id])
    expect(n.ledger.doc(segment)).toBeUndefined()
    await waitFor(async () => (await n.engine.get(sleeper.id)).state === 'killed', { what: 'the sleeper to be killed', timeout: 60_000 })
  }, 180_000)
})
