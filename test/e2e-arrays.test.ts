import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { json, meshq, ok, startCluster, startNode, twoNodes } from './cluster.js'
import type { TestNode } from './cluster.js'
import { tempDir, waitFor } from './helpers.js'
import type { JobView } from '../src/types.js'

const cleanups: Array<() => Promise<void>> = []
afterAll(async () => { for (const c of cleanups.splice(0)) await c() })

async function workFile (name: string): Promise<string> {
  const work = await tempDir('meshq-array-')
  cleanups.push(work.cleanup)
  return join(work.dir, name)
}

const lines = async (file: string): Promise<string[]> => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(l => l !== '')

/** Each task appends its index to `file`. */
const appendIndex = (file: string): string[] => ['sh', '-c', `echo $MESHQ_ARRAY_INDEX >> ${file}`]

async function submitArray (home: string, args: string[], cmd: string[]): Promise<string> {
  return (await ok(home, ['sub', ...args, '--', ...cmd])).trim()
}

async function stateOf (home: string, id: string): Promise<JobView> {
  return await json<JobView>(home, ['show', id])
}

async function waitState (home: string, id: string, state: string, timeout = 60_000): Promise<JobView> {
  return await waitFor(async () => {
    const job = await stateOf(home, id)
    return job.state === state ? job : undefined
  }, { what: `${id} to be ${state}`, timeout })
}

describe('job arrays on one node', () => {
  let node: TestNode
  beforeAll(async () => {
    node = await startNode({ args: ['--slots', '4'] })
    cleanups.push(node.cleanup)
  }, 60_000)

  it('runs one task per index, each seeing its index, and shows the array as one row', async () => {
    const file = await workFile('indices')
    const id = await submitArray(node.home, ['--array', '3-21:3'], appendIndex(file))
    expect(id).toMatch(/^[a-z2-7]{6}-\d+$/)
    await ok(node.home, ['wait', id], { timeout: 60_000 })
    expect((await lines(file)).map(Number).sort((a, b) => a - b)).toEqual([3, 6, 9, 12, 15, 18, 21])
    const view = await stateOf(node.home, id)
    expect(view.state).toBe('done')
    expect(view.array).toMatchObject({ first: 3, last: 21, step: 3, tasks: 7, states: { done: 7 } })
    const task = await stateOf(node.home, `${id}[9]`)
    expect(task).toMatchObject({ id: `${id}[9]`, state: 'done', arrayId: id, arrayIndex: 9 })
    expect((await ok(node.home, ['logs', `${id}[9]`])).trim()).toBe('')
    // ls: one row for the array, its tasks only on request
    const rows = await json<JobView[]>(node.home, ['ls'])
    expect(rows.filter(r => r.id.startsWith(`${id}[`))).toEqual([])
    expect(rows.find(r => r.id === id)?.array?.tasks).toBe(7)
    expect(await ok(node.home, ['ls'])).toMatch(new RegExp(`${id} +done .*7 tasks: 7 done`))
    const tasks = await json<JobView[]>(node.home, ['ls', '--array', id])
    expect(tasks.map(t => t.arrayIndex).sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual([3, 6, 9, 12, 15, 18, 21])
    expect((await ok(node.home, ['status', id, `${id}[3]`])).trim().split('\n')).toEqual(['success', 'success'])
  }, 120_000)

  it('never runs more tasks than --array-limit at once (and %N says the same)', async () => {
    const file = await workFile('overlap')
    // each task holds a slot of the limit for a while: the overlap is read from the starts and ends it writes
    const script = `echo "+ $MESHQ_ARRAY_INDEX" >> ${file}; sleep 0.5; echo "- $MESHQ_ARRAY_INDEX" >> ${file}`
    for (const args of [['--array', '1-8', '--array-limit', '2'], ['--array', '1-8%2']]) {
      const id = await submitArray(node.home, args, ['sh', '-c', script])
      expect((await stateOf(node.home, id)).array?.limit).toBe(2)
      await ok(node.home, ['wait', id], { timeout: 90_000 })
      let running = 0
      let most = 0
      for (const line of await lines(file)) {
        running += line.startsWith('+') ? 1 : -1
        most = Math.max(most, running)
      }
      expect(running).toBe(0)
      expect(most).toBe(2) // 4 slots free, so the cap, not the node, held it to 2
      await writeFile(file, '')
    }
  }, 240_000)

  it('waits with --after for a whole array and for one task', async () => {
    const file = await workFile('order')
    const id = await submitArray(node.home, ['--array', '1-4'], ['sh', '-c', `sleep 0.3; echo task $MESHQ_ARRAY_INDEX >> ${file}`])
    const afterTask = await submitArray(node.home, ['--after', `${id}[2]`], ['sh', '-c', `echo after-task >> ${file}`])
    const afterAll = await submitArray(node.home, ['--after', id], ['sh', '-c', `echo after-all >> ${file}`])
    await ok(node.home, ['wait', afterAll, afterTask], { timeout: 60_000 })
    const order = await lines(file)
    expect(order.filter(l => l.startsWith('task'))).toHaveLength(4)
    expect(order.indexOf('after-task')).toBeGreaterThan(order.indexOf('task 2'))
    // after-task may start as late as after-all (a busy node), so only the array's tasks must precede after-all
    const lastTask = Math.max(...['task 1', 'task 2', 'task 3', 'task 4'].map(t => order.indexOf(t)))
    expect(order.indexOf('after-all')).toBeGreaterThan(lastTask)
  }, 120_000)

  it('kills and retries one task, then the whole array', async () => {
    const file = await workFile('attempts')
    // a task fails until the marker file exists; task 1 sleeps until killed
    const script = `echo $MESHQ_ARRAY_INDEX $MESHQ_ATTEMPT >> ${file}; if [ $MESHQ_ARRAY_INDEX = 1 ]; then sleep 300; fi; test -e ${file}.ok`
    const id = await submitArray(node.home, ['--array', '1-3'], ['sh', '-c', script])
    await waitState(node.home, `${id}[2]`, 'failed')
    await waitState(node.home, `${id}[1]`, 'running')
    await ok(node.home, ['kill', `${id}[1]`])
    await waitState(node.home, `${id}[1]`, 'killed')
    await waitState(node.home, id, 'failed')
    await writeFile(`${file}.ok`, '')
    await ok(node.home, ['retry', `${id}[2]`])
    await waitState(node.home, `${id}[2]`, 'done')
    expect((await stateOf(node.home, id)).array?.states).toMatchObject({ done: 1, failed: 1, killed: 1 })
    // the whole array: the failed and the killed task run again, the done one does not
    await ok(node.home, ['retry', id])
    const task1 = await waitState(node.home, `${id}[1]`, 'running')
    expect(task1.attempts.length).toBe(2)
    await ok(node.home, ['kill', id])
    const killed = await waitState(node.home, id, 'killed')
    expect(killed.array?.states).toMatchObject({ done: 2, killed: 1 })
    expect((await lines(file)).filter(l => l.startsWith('2 '))).toHaveLength(2)
  }, 120_000)

  it('refuses bad arrays with a usage error and submits nothing; an index out of range is not found', async () => {
    const before = (await json<JobView[]>(node.home, ['ls'])).length
    for (const [args, message] of [
      [['--array', '5-1'], /ends before it starts/],
      [['--array', '1-x'], /bad --array "1-x"/],
      [['--array', '1-20000000'], /20000000 tasks, at most/],
      [['--array', '1-3', '--array-limit', '0'], /--array-limit/],
      [['--array-limit', '2'], /--array-limit needs --array/]
    ] as Array<[string[], RegExp]>) {
      const result = await meshq(node.home, ['sub', ...args, '--', 'true'])
      expect(result.code, args.join(' ')).toBe(2)
      expect(result.stderr).toMatch(message)
    }
    expect((await json<JobView[]>(node.home, ['ls'])).length).toBe(before)
    const id = await submitArray(node.home, ['--array', '1-2'], ['true'])
    for (const missing of [`${id}[3]`, `${id}[0]`]) {
      const result = await meshq(node.home, ['show', missing])
      expect(result.code).toBe(1)
      expect(result.stderr).toContain(`no job ${missing}`)
    }
  }, 60_000)
})

describe('job arrays on a mesh', () => {
  it('runs every index of an array exactly once on a 3-node mesh', async () => {
    const nodes = await startCluster(3, ['--slots', '2'])
    cleanups.push(async () => { for (const n of nodes) await n.cleanup() })
    const file = await workFile('mesh')
    const id = await submitArray(nodes[1].home, ['--array', '1-60'], ['sh', '-c', `echo $MESHQ_ARRAY_INDEX >> ${file}`])
    // waited for on another node than the submitter
    await ok(nodes[2].home, ['wait', id], { timeout: 120_000 })
    expect((await lines(file)).map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1))
    const tasks = await json<JobView[]>(nodes[0].home, ['ls', '--array', id])
    expect(tasks.map(t => t.attempts.length)).toEqual(Array(60).fill(1))
    const perNode = Object.values(Object.groupBy(tasks, t => t.node ?? '?')).map(t => t?.length)
    console.log(`array of 60 on 3 nodes: tasks per node ${JSON.stringify(perNode)}`)
  }, 180_000)

  it('survives a SIGKILL of the node that ran its tasks: the rest run on the other node', async () => {
    const [first, second] = await twoNodes(['--slots', '1', '--tags', 'first'], ['--slots', '1'])
    cleanups.push(first.cleanup, second.cleanup)
    const file = await workFile('failover')
    // the second node is held busy so that the first starts the array
    const blocker = (await ok(second.home, ['sub', '--', 'sleep', '300'])).trim()
    await waitState(second.home, blocker, 'running')
    const id = await submitArray(first.home, ['--array', '1-4', '--ttr', '3s'], ['sh', '-c', `echo $MESHQ_ARRAY_INDEX $MESHQ_NODE >> ${file}; sleep 5`])
    await waitFor(async () => ((await stateOf(first.home, id)).array?.states.running ?? 0) > 0 || undefined, { what: 'a task to run' })
    await first.kill('SIGKILL')
    await ok(second.home, ['kill', blocker])
    await ok(second.home, ['wait', id], { timeout: 120_000 })
    const view = await stateOf(second.home, id)
    expect(view.array?.states.done).toBe(4)
    expect(new Set((await lines(file)).map(l => l.split(' ')[0]))).toEqual(new Set(['1', '2', '3', '4']))
  }, 180_000)
})
