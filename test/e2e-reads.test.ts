import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { meshq, ok, startCluster } from './cluster.js'
import type { TestNode } from './cluster.js'

let nodes: TestNode[] = []
beforeAll(async () => { nodes = await startCluster(3, ['--slots', '2']) }, 120_000)
afterAll(async () => { for (const n of nodes) await n.cleanup() })

describe('reads on another host', () => {
  it('wait --group and wait ID right after a batch submitted elsewhere agree with the submitting node (10 of 10)', async () => {
    const [submitter, other, third] = nodes
    for (let round = 0; round < 10; round++) {
      const group = `g${round}`
      // five that succeed, then one that fails after the others: an early answer would be 0
      const batch = [...Array.from({ length: 5 }, () => ({ cmd: ['true'], group })), { cmd: ['sh', '-c', 'sleep 0.3; exit 3'], group }]
      const ids = (await ok(submitter.home, ['sub', '--batch'], { input: batch.map(j => JSON.stringify(j)).join('\n') })).trim().split('\n')
      const [here, there, byId, failing] = await Promise.all([
        meshq(submitter.home, ['wait', '--group', group]),
        meshq(other.home, ['wait', '--group', group]),
        meshq(third.home, ['wait', ids[0]]),
        meshq(third.home, ['wait', ids[5]])
      ])
      expect(here.code, `round ${round}: on the submitting node`).toBe(1)
      expect(there.code, `round ${round}: on another node (${there.stderr.trim()})`).toBe(1)
      expect(byId.code, `round ${round}: wait ID elsewhere (${byId.stderr.trim()})`).toBe(0)
      expect(failing.code, `round ${round}: wait of the failing job elsewhere`).toBe(1)
    }
  }, 240_000)

  it('show, kill and logs of a job submitted elsewhere find it at once; a group no node knows is an error', async () => {
    const [submitter, other] = nodes
    const id = (await ok(submitter.home, ['sub', '--', 'sh', '-c', 'echo hi; sleep 60'])).trim()
    const shown = await meshq(other.home, ['show', id])
    expect(shown.code, shown.stderr).toBe(0)
    expect((await meshq(other.home, ['kill', id])).code).toBe(0)
    expect((await meshq(submitter.home, ['wait', id])).code).not.toBe(0) // killed
    const nobody = await meshq(other.home, ['wait', '--group', 'no-such-group'])
    expect(nobody.code).toBe(1)
    expect(nobody.stderr).toMatch(/no job of group no-such-group/)
  }, 120_000)
})
