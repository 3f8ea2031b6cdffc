import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { json, meshq, ok, startNode } from './cluster.js'
import type { TestNode } from './cluster.js'
import { tempDir, waitFor } from './helpers.js'
import type { JobView, LimitView } from '../src/types.js'

let nodes: TestNode[] = []
let work: Awaited<ReturnType<typeof tempDir>>
beforeAll(async () => {
  work = await tempDir()
  // tags pin jobs to one node or the other, so that the limit is seen to hold across nodes
  const founder = await startNode({ args: ['--slots', '3', '--tags', 'x'] })
  const token = (await ok(founder.home, ['invite'])).trim()
  nodes = [founder, await startNode({ args: ['--slots', '3', '--tags', 'y', '--join', token] })]
})
afterAll(async () => {
  for (const n of nodes) await n.cleanup()
  await work.cleanup()
})

/** A job that marks its start and end (nanoseconds on this machine's one clock) in a shared file. */
const marked = (file: string, seconds: number): string[] =>
  ['sh', '-c', `echo "s $MESHQ_JOB_ID $(date +%s%N)" >> ${file}; sleep ${seconds}; echo "e $MESHQ_JOB_ID $(date +%s%N)" >> ${file}`]

/** The [start, end] interval of each job in a file of marks. */
async function intervals (file: string): Promise<Map<string, [number, number]>> {
  const runs = new Map<string, [number, number]>()
  for (const line of (await readFile(file, 'utf8')).trim().split('\n')) {
    const [mark, id, ns] = line.split(' ')
    const run = runs.get(id) ?? [0, 0]
    run[mark === 's' ? 0 : 1] = Number(BigInt(ns) / 1000n)
    runs.set(id, run)
  }
  return runs
}

describe('meshq limit', () => {
  it('caps a group at one running job across the whole mesh', async () => {
    const [a, b] = nodes
    const marks = join(work.dir, 'limit-marks')
    expect(await ok(a.home, ['limit', 'render', '1'])).toMatch(/at most 1/)
    await waitFor(async () => (await json<LimitView[]>(b.home, ['limit'])).some(l => l.group === 'render' && l.limit === 1), { what: 'the limit on the other node' })
    const input = Array.from({ length: 6 }, (_, i) => JSON.stringify({ cmd: marked(marks, 0.3), group: 'render', tag: i % 2 === 0 ? 'x' : 'y' })).join('\n')
    const ids = (await ok(b.home, ['sub', '--batch'], { input })).trim().split('\n')
    // while one runs, the others say why they wait
    await waitFor(async () => (await json<JobView[]>(a.home, ['ls', '--group', 'render'])).some(j => /at its limit of 1/.test(j.reason ?? '')), { what: 'a job waiting for the limit' })
    expect((await meshq(a.home, ['wait', '--group', 'render'], { timeout: 120_000 })).code).toBe(0)

    const runs = [...(await intervals(marks)).entries()]
    expect(runs.map(([id]) => id).sort()).toEqual([...ids].sort())
    runs.sort((x, y) => x[1][0] - y[1][0])
    for (let i = 1; i < runs.length; i++) expect(runs[i][1][0], `${runs[i][0]} started before ${runs[i - 1][0]} ended`).toBeGreaterThanOrEqual(runs[i - 1][1][1])
  })

  it('is lifted with none, and refuses a bad number', async () => {
    const [a, b] = nodes
    await ok(b.home, ['limit', 'render', 'none'])
    await waitFor(async () => (await json<LimitView[]>(a.home, ['limit'])).every(l => l.group !== 'render'), { what: 'the limit lifted everywhere' })
    const bad = await meshq(a.home, ['limit', 'render', '0'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/limit/)
  })
})

describe('meshq mod', () => {
  it('changes a queued job and refuses a running one', async () => {
    const [a, b] = nodes
    const go = join(work.dir, 'go')
    const order = join(work.dir, 'order')
    // every slot of both nodes busy, blocker i until `go-i` exists
    const blockers = (await ok(a.home, ['sub', '--batch'], {
      input: Array.from({ length: 6 }, (_, i) => JSON.stringify({ cmd: ['sh', '-c', `while [ ! -e ${go}-${i} ]; do sleep 0.05; done`], group: 'block' })).join('\n')
    })).trim().split('\n')
    await waitFor(async () => (await json<JobView[]>(a.home, ['ls', '--group', 'block', '--state', 'running'])).length === 6, { what: 'the blockers to run' })
    const first = (await ok(a.home, ['sub', '--name', 'first', '--', 'sh', '-c', `echo first >> ${order}`])).trim()
    const second = (await ok(a.home, ['sub', '--name', 'second', '--', 'sh', '-c', `echo second >> ${order}`])).trim()
    await waitFor(async () => (await meshq(b.home, ['show', second])).code === 0, { what: 'the job on the other node' })

    expect((await ok(b.home, ['mod', second, '--pri', '5', '--retries', '2'])).trim()).toBe(second)
    await waitFor(async () => { const job = await json<JobView>(a.home, ['show', second]); return job.pri === 5 && job.retries === 2 }, { what: 'the change on the submitting node' })

    const running = await meshq(a.home, ['mod', blockers[0], '--pri', '1'])
    expect(running.code).toBe(1)
    expect(running.stderr).toMatch(/is running/)
    const nothing = await meshq(a.home, ['mod', first])
    expect(nothing.code).toBe(2)
    expect(nothing.stderr).toMatch(/nothing to change/)
    expect((await meshq(a.home, ['mod', first, '--ttr', '10ms'])).stderr).toMatch(/ttr must be at least 1s/)
    expect((await meshq(a.home, ['mod', 'nosuch-1', '--pri', '1'])).code).toBe(1)

    // one slot frees: the raised priority decides which job takes it
    await writeFile(`${go}-0`, '')
    await waitFor(async () => (await json<JobView>(a.home, ['show', first])).state === 'done', { what: 'both jobs to run in the one free slot', timeout: 30_000 })
    for (let i = 1; i < 6; i++) await writeFile(`${go}-${i}`, '')
    expect((await meshq(a.home, ['wait', first, second], { timeout: 120_000 })).code).toBe(0)
    expect((await readFile(order, 'utf8')).trim().split('\n')).toEqual(['second', 'first'])
  })
})
