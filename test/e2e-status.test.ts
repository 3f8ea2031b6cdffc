import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { meshq, ok, startCluster } from './cluster.js'
import type { TestNode } from './cluster.js'
import { waitFor } from './helpers.js'

let nodes: TestNode[] = []
beforeAll(async () => { nodes = await startCluster(2, ['--slots', '4']) }, 120_000)
afterAll(async () => { for (const n of nodes) await n.cleanup() })

async function submitBatch (home: string, jobs: object[]): Promise<string[]> {
  return (await ok(home, ['sub', '--batch'], { input: jobs.map(j => JSON.stringify(j)).join('\n') })).trim().split('\n')
}

async function words (home: string, ids: string[]): Promise<string[]> {
  return (await ok(home, ['status', ...ids])).trim().split('\n')
}

describe('meshq status', () => {
  it('prints one word per id, in order, on the other node too: pending, running, success, failed, killed', async () => {
    const [submitter, other] = nodes
    const ids = await submitBatch(submitter.home, [
      { cmd: ['true'] },
      { cmd: ['sh', '-c', 'exit 3'] },
      { cmd: ['sleep', '300'] },
      { cmd: ['true'], delay: '1h' },
      { cmd: ['sleep', '300'], delay: '1h' }
    ])
    await ok(submitter.home, ['kill', ids[4]])
    const expected = ['success', 'failed', 'running', 'pending', 'killed']
    for (const node of [other, submitter]) {
      await waitFor(async () => (await words(node.home, ids)).join(' ') === expected.join(' '), { what: `the five words on ${node.home}`, timeout: 60_000 })
    }
    const rows = JSON.parse(await ok(other.home, ['status', ids[0], ids[3], '--json']))
    expect(rows).toEqual([{ id: ids[0], status: 'success', state: 'done' }, { id: ids[3], status: 'pending', state: 'pending' }])
    await ok(submitter.home, ['kill', ids[2]])
  }, 120_000)

  it('right after a submit elsewhere, waits for the jobs instead of saying they do not exist (10 of 10)', async () => {
    const [submitter, other] = nodes
    for (let round = 0; round < 10; round++) {
      const ids = await submitBatch(submitter.home, Array.from({ length: 20 }, () => ({ cmd: ['true'], delay: '1h' })))
      const result = await meshq(other.home, ['status', ...ids])
      expect(result.code, `round ${round}: ${result.stderr}`).toBe(0)
      expect(result.stdout.trim().split('\n'), `round ${round}`).toEqual(ids.map(() => 'pending'))
    }
  }, 180_000)

  it('answers 3,000 ids in one call', async () => {
    const [submitter, other] = nodes
    const ids = await submitBatch(submitter.home, Array.from({ length: 3000 }, () => ({ cmd: ['true'], delay: '1h' })))
    await ok(other.home, ['status', ids[2999]]) // the whole batch has arrived
    const started = Date.now()
    expect(await words(other.home, ids)).toEqual(ids.map(() => 'pending'))
    // generous for a busy machine: one request, no job records built
    expect(Date.now() - started).toBeLessThan(10_000)
  }, 120_000)

  it('an unknown id is an error that names it and prints nothing; no id is a usage error', async () => {
    const [submitter, other] = nodes
    const [known] = await submitBatch(submitter.home, [{ cmd: ['true'], delay: '1h' }])
    const unknown = await meshq(other.home, ['status', known, 'zzzzzz-7'])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toMatch(/no job zzzzzz-7/)
    expect(unknown.stdout).toBe('')
    const usage = await meshq(other.home, ['status'])
    expect(usage.code).toBe(2)
    expect(usage.stderr).toMatch(/give job ids/)
  }, 120_000)
})
