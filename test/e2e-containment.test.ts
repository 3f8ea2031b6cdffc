/**
 * End to end through the CLI: a job's process that left its process group and session (`setsid`)
 * dies with the job on `meshq kill`, at `--timeout`, and when the node is SIGKILLed (issue 16,
 * finding 11). Needs root (CI runs as root) for the cgroups; a node without them says so.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import type { JobView } from '../src/types.js'
import { json, ok, startNode, type TestNode } from './cluster.js'
import { alive, ESCAPING_JOB, escapedPid, killIfAlive, waitForGone } from './exec-fixture.js'
import { tempDir, waitFor } from './helpers.js'

const isRoot = process.getuid?.() === 0
const cleanups: Array<() => Promise<void>> = []
let work: { dir: string, cleanup: () => Promise<void> }

beforeAll(async () => { work = await tempDir('meshq-e2e-contain-') })
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})
afterAll(async () => { await work?.cleanup() })

async function started (args: string[] = []): Promise<TestNode> {
  const node = await startNode({ args: ['--kill-grace', '1s', ...args] })
  cleanups.push(async () => { await node.cleanup() })
  return node
}

/** Submits the escaping job in a directory of its own; returns its id and the escaped process. */
async function submitEscaping (node: TestNode, name: string, args: string[] = []): Promise<{ id: string, escaped: number }> {
  const dir = join(work.dir, name)
  await mkdir(dir)
  const id = (await ok(node.home, ['sub', '--cwd', dir, ...args, '--', ...ESCAPING_JOB])).trim()
  const escaped = await escapedPid(join(dir, 'pidfile'), pid => { cleanups.push(async () => { await killIfAlive(pid) }) })
  return { id, escaped }
}

async function settled (node: TestNode, id: string, state: string): Promise<JobView> {
  return await waitFor(async () => {
    const job = await json<JobView>(node.home, ['show', id])
    return job.state === state ? job : undefined
  }, { what: `${id} to be ${state}`, timeout: 60_000 })
}

describe.runIf(isRoot)('a job\'s whole process tree', () => {
  let node: TestNode

  beforeAll(async () => { node = await startNode({ args: ['--kill-grace', '1s'] }) }, 60_000)
  afterAll(async () => { await node?.cleanup() })

  test('dies on meshq kill, also what left its process group', async () => {
    const { id, escaped } = await submitEscaping(node, 'kill')
    await ok(node.home, ['kill', id])
    const job = await settled(node, id, 'killed')
    expect(job.attempts[0]).toMatchObject({ failReason: 'killed', signal: 'SIGTERM' })
    expect(job.attempts[0].uncontained).toBeUndefined()
    await waitForGone(escaped)
  })

  test('dies at its --timeout', async () => {
    const { id, escaped } = await submitEscaping(node, 'timeout', ['--timeout', '3s'])
    const job = await settled(node, id, 'failed')
    expect(job.attempts[0]).toMatchObject({ failReason: 'timed-out', signal: 'SIGTERM' })
    await waitForGone(escaped)
  })

  test('dies when the node is SIGKILLed', async () => {
    const doomed = await started()
    const { escaped } = await submitEscaping(doomed, 'node-death')
    await doomed.kill('SIGKILL')
    await waitForGone(escaped)
  })
})

describe('a node without cgroups', () => {
  test('says so when it starts, and show marks its runs uncontained', async () => {
    const node = await started(['--no-cgroups'])
    expect(node.output()).toMatch(/^meshq: jobs are contained by process group only \(cgroups are turned off\): processes that leave a job's process group \(setsid\) outlive/m)
    const { id, escaped } = await submitEscaping(node, 'uncontained')
    await ok(node.home, ['kill', id])
    const job = await settled(node, id, 'killed')
    expect(job.attempts[0].uncontained).toBe(true)
    const text = await ok(node.home, ['show', id])
    expect(text).toMatch(/\(uncontained\)/)
    expect(text).toMatch(/uncontained: the node had no cgroup for the attempt; processes that left its process group \(setsid\) were not killed with it/)
    expect(await alive(escaped)).toBe(true) // the limit docs/guarantees.md states
  })
})
