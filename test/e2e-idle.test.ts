import { afterAll, describe, expect, it } from 'vitest'
import { ok, startNode } from './cluster.js'
import type { TestNode } from './cluster.js'
import { waitFor } from './helpers.js'

let node: TestNode | undefined
afterAll(async () => { await node?.cleanup() })

describe('an idle node', () => {
  it('gives its spare heap back once it has been quiet for 10 s', async () => {
    node = await startNode({ env: { DEBUG: 'meshq:memory' } })
    const id = (await ok(node.home, ['sub', '--', 'true'])).trim()
    await ok(node.home, ['wait', id])
    const line = await waitFor(() => /quiet for \d+ s: heap (\d+) MiB \((\d+) in use\)(?: → (\d+) MiB|, little to give back)/.exec(node?.output() ?? ''),
      { what: 'the check of a quiet node', timeout: 60_000 })
    const [before, used] = line.slice(1, 3).map(Number)
    if (line[3] === undefined) {
      // V8 had given the heap back already (say, its own reducer ran): nothing to collect, rightly
      expect(before - used).toBeLessThanOrEqual(16) // MiB, rounded
    } else {
      expect(Number(line[3])).toBeLessThan(before)
      expect(Number(line[3])).toBeLessThanOrEqual(used + 8)
    }
  }, 90_000)
})
