import { afterAll, describe, expect, it } from 'vitest'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { groupAlive, json, meshq, ok, startNode } from './cluster.js'
import type { TestNode } from './cluster.js'
import { waitFor } from './helpers.js'
import type { JobView } from '../src/types.js'

const nodes: TestNode[] = []
afterAll(async () => { for (const n of nodes) await n.cleanup() })

/** Process group ids of the processes whose environment names this job. */
async function groupsOf (jobId: string): Promise<number[]> {
  const groups = new Set<number>()
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    const env = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '')
    if (!env.split('\0').includes(`MESHQ_JOB_ID=${jobId}`)) continue
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
    if (stat !== '') groups.add(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]))
  }
  return [...groups]
}

describe('a node killed with SIGKILL', () => {
  it('loses no acknowledged job, kills the old processes, and reruns interrupted attempts', async () => {
    const first = await startNode({ args: ['--slots', '1'] })
    nodes.push(first)
    const { home } = first
    // runs long only on its first attempt
    const long = (await ok(home, ['sub', '--', 'sh', '-c', 'if [ "$MESHQ_ATTEMPT" = 1 ]; then sleep 300; fi'])).trim()
    const queued = (await ok(home, ['sub', '--batch'], { input: '{"cmd":["true"]}\n{"cmd":["true"]}\n{"cmd":["true"]}\n' })).trim().split('\n')
    const pgids = await waitFor(async () => { const g = await groupsOf(long); return g.length > 0 ? g : undefined }, { what: 'the job to start' })
    expect((await json<JobView>(home, ['show', queued[0]])).state).toBe('ready')

    expect(await first.kill('SIGKILL')).toBe(null)
    // the orphan guard kills the job's process group within 5 s of the node's death
    await waitFor(async () => !(await Promise.all(pgids.map(groupAlive))).some(Boolean), { timeout: 5000, interval: 100, what: 'job processes to die' })
    expect((await meshq(home, ['ls'])).code).toBe(3)

    const second = await startNode({ home, args: ['--slots', '1'] })
    nodes.push(second)
    for (const id of [long, ...queued]) {
      await waitFor(async () => (await json<JobView>(home, ['show', id])).state === 'done', { what: `${id} to finish` })
    }
    const job = await json<JobView>(home, ['show', long])
    expect(job.attempts.map(a => [a.epoch, a.failReason ?? null])).toEqual([[1, 'lost'], [2, null]])
  })
})

describe('a corrupted store', () => {
  it('makes the node refuse to start with a clear message, rather than drop jobs', async () => {
    const node = await startNode()
    nodes.push(node)
    await ok(node.home, ['sub', '--', 'true'])
    expect(await node.kill('SIGTERM')).toBe(0)
    const ledger = join(node.home, 'ledger')
    for (const file of await readdir(ledger)) {
      if (file.startsWith('MANIFEST-')) await writeFile(join(ledger, file), 'garbage'.repeat(100))
    }
    const restart = await meshq(node.home, ['node', '--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(restart.code).toBe(1)
    expect(restart.stderr).toMatch(/corrupt/)
    expect(restart.stderr).toMatch(/Move the directory aside/)
  })
})
