import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { groupAlive, json, meshq, ok, startNode } from './cluster.js'
import type { TestNode } from './cluster.js'
import { tempDir, waitFor } from './helpers.js'
import type { JobView, PeerView } from '../src/types.js'

let node: TestNode
let work: { dir: string, cleanup: () => Promise<void> }

beforeAll(async () => {
  work = await tempDir('meshq-work-')
  node = await startNode({ args: ['--slots', '2', '--kill-grace', '1s'] })
})
afterAll(async () => {
  await node?.cleanup()
  await work?.cleanup()
})

const sub = async (...args: string[]): Promise<string> => (await ok(node.home, ['sub', ...args])).trim()
const show = async (id: string): Promise<JobView> => await json<JobView>(node.home, ['show', id])
const waitState = async (id: string, state: string): Promise<JobView> =>
  await waitFor(async () => { const job = await show(id); return job.state === state ? job : undefined }, { what: `${id} to be ${state}` })
const lines = async (file: string): Promise<string[]> => (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(l => l !== '')
/** Shell that blocks until a file exists: lets a test hold a job running. */
const waitForFile = (file: string): string => `while [ ! -e ${file} ]; do sleep 0.05; done`
/** A job that appends a word to a file. */
const append = (file: string, word: string): string[] => ['sh', '-c', `echo ${word} >> ${file}`]

describe('one node, end to end through the CLI', () => {
  it('runs a job and captures its output', async () => {
    const id = await sub('--', 'sh', '-c', 'echo hello; echo oops >&2')
    const job = await waitState(id, 'done')
    expect(job.exitCode).toBe(0)
    expect(job.attempts).toHaveLength(1)
    expect(await ok(node.home, ['logs', id])).toBe('hello\n')
    expect(await ok(node.home, ['logs', id, '--stderr'])).toBe('oops\n')
  })

  it('sub --wait streams the output and exits with the job exit code', async () => {
    const result = await meshq(node.home, ['sub', '--wait', '--', 'sh', '-c', 'echo streamed; exit 7'])
    expect(result.code).toBe(7)
    expect(result.stdout).toContain('streamed')
  })

  it('runs dependencies in order, on job ids and on groups', async () => {
    const file = join(work.dir, 'deps')
    const gate = join(work.dir, 'deps-gate')
    const first = await sub('--', 'sh', '-c', `${waitForFile(gate)}; echo first >> ${file}`)
    const second = await sub('--after', first, '--group', 'mid', '--', ...append(file, 'second'))
    await sub('--group', 'mid', '--', 'sh', '-c', `${waitForFile(gate)}; echo second-b >> ${file}`)
    const last = await sub('--after-group', 'mid', '--', ...append(file, 'last'))
    expect((await show(second)).reason).toBe(`waiting for job ${first}`)
    expect((await show(last)).reason).toBe('waiting for group mid (0/2 done)')
    await writeFile(gate, '')
    await ok(node.home, ['wait', last])
    const order = await lines(file)
    expect(order.indexOf('first')).toBeLessThan(order.indexOf('second'))
    expect(order.at(-1)).toBe('last')
    expect(order.sort()).toEqual(['first', 'last', 'second', 'second-b'])
    expect((await show(second)).state).toBe('done')
  })

  it('a failed dependency fails its dependants with reason dependency-failed, naming it', async () => {
    const bad = await sub('--', 'false')
    const dependant = await sub('--after', bad, '--', 'true')
    await waitState(bad, 'failed')
    const job = await waitFor(async () => { const j = await show(dependant); return j.state === 'failed' ? j : undefined })
    expect(job.reason).toBe(`dependency-failed: job ${bad} failed`)
    expect(job.attempts).toEqual([])
  })

  it('starts higher priorities first, then in submit order', async () => {
    const file = join(work.dir, 'pri')
    await ok(node.home, ['pause', 'prio'])
    await sub('--group', 'prio', '--', ...append(file, 'low-1'))
    await sub('--group', 'prio', '--pri', '5', '--', ...append(file, 'high-1'))
    await sub('--group', 'prio', '--', ...append(file, 'low-2'))
    const lastId = await sub('--group', 'prio', '--pri', '5', '--', ...append(file, 'high-2'))
    expect((await show(lastId)).reason).toBe('group prio paused')
    // one slot at a time so that start order is completion order
    const blocker = await sub('--cores', '1', '--', 'sleep', '30')
    await waitState(blocker, 'running')
    await ok(node.home, ['resume', 'prio'])
    await ok(node.home, ['wait', '--group', 'prio'])
    await ok(node.home, ['kill', blocker])
    expect(await lines(file)).toEqual(['high-1', 'high-2', 'low-1', 'low-2'])
  })

  it('retries a failing job with backoff until it succeeds', async () => {
    const counter = join(work.dir, 'tries')
    const id = await sub('--retries', '3', '--', 'sh', '-c', `echo x >> ${counter}; [ $(wc -l < ${counter}) -ge 2 ]`)
    const job = await waitState(id, 'done')
    expect(job.attempts.map(a => a.exitCode)).toEqual([1, 0])
    expect(Date.parse(job.attempts[1].startedAt as string) - Date.parse(job.attempts[0].endedAt as string)).toBeGreaterThanOrEqual(900)
  })

  it('gives up after the retries and says why', async () => {
    const id = await sub('--retries', '1', '--', 'sh', '-c', 'exit 3')
    const job = await waitState(id, 'failed')
    expect(job.attempts).toHaveLength(2)
    expect(job.exitCode).toBe(3)
    expect(job.reason).toBe('exit code 3')
    await ok(node.home, ['retry', id])
    expect((await waitFor(async () => { const j = await show(id); return j.attempts.length === 4 && j.state === 'failed' ? j : undefined })).attempts).toHaveLength(4)
  })

  it('delays a job', async () => {
    const id = await sub('--delay', '1500ms', '--', 'true')
    const submitted = await show(id)
    expect(submitted.state).toBe('pending')
    expect(submitted.reason).toMatch(/^delayed until/)
    const job = await waitState(id, 'done')
    expect(Date.parse(job.startedAt as string) - Date.parse(job.submittedAt)).toBeGreaterThanOrEqual(1400)
  })

  it('kills a running job and its whole process group', async () => {
    const id = await sub('--', 'sh', '-c', 'sleep 300 & sleep 300')
    await waitState(id, 'running')
    const pgid = await waitFor(async () => await findGroupOf(id), { what: 'the job process' })
    expect(await groupAlive(pgid)).toBe(true)
    await ok(node.home, ['kill', id])
    const job = await waitState(id, 'killed')
    expect(job.attempts[0].failReason).toBe('killed')
    await waitFor(async () => !(await groupAlive(pgid)), { what: 'process group to die' })
  })

  it('returns the first job for a repeated idempotency key', async () => {
    const first = await sub('--id', 'nightly-42', '--', 'true')
    const again = await sub('--id', 'nightly-42', '--', 'echo', 'other')
    expect(again).toBe(first)
    expect((await show(first)).cmd).toEqual(['true'])
  })

  it('fails a job whose cwd is missing or whose command does not exist, with the reason', async () => {
    const noCwd = await sub('--cwd', join(work.dir, 'nope'), '--', 'true')
    const noCmd = await sub('--', 'meshq-no-such-command')
    expect((await waitState(noCwd, 'failed')).attempts[0].failReason).toBe('cwd-missing')
    expect((await waitState(noCmd, 'failed')).attempts[0].failReason).toBe('command-not-found')
  })

  it('refuses bad input with a clear message and the right exit code, submitting nothing', async () => {
    const before = (await json<JobView[]>(node.home, ['ls', '--all'])).length
    expect((await meshq(node.home, [])).code).toBe(2)
    expect((await meshq(node.home, ['sub', '--bogus', '--', 'true'])).code).toBe(2)
    const badDuration = await meshq(node.home, ['sub', '--delay', '5 parsecs', '--', 'true'])
    expect(badDuration.code).toBe(2)
    expect(badDuration.stderr).toMatch(/duration|delay/)
    const missing = await meshq(node.home, ['sub', '--after', 'zzzzzz-1', '--', 'true'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/zzzzzz-1 does not exist/)
    const cycle = await meshq(node.home, ['sub', '--group', 'loop', '--after-group', 'loop', '--', 'true'])
    expect(cycle.code).toBe(1)
    expect(cycle.stderr).toMatch(/cycle/)
    const batch = await meshq(node.home, ['sub', '--batch'], { input: '{"cmd":["true"]}\n{"cmd": "not an array"}\n' })
    expect(batch.code).not.toBe(0)
    expect(batch.stderr).toMatch(/line 2/)
    const oversized = await meshq(node.home, ['sub', '--batch'], { input: `{"cmd":["echo","${'x'.repeat(2 * 1024 * 1024)}"]}\n` })
    expect(oversized.code).not.toBe(0)
    expect(oversized.stderr).toMatch(/line 1/)
    expect((await json<JobView[]>(node.home, ['ls', '--all'])).length).toBe(before)
  })

  it('submits a batch of JSON lines', async () => {
    const out = await ok(node.home, ['sub', '--batch'], { input: '{"cmd":["true"],"group":"b"}\n{"cmd":["true"],"group":"b","pri":3}\n' })
    expect(out.trim().split('\n')).toHaveLength(2)
    const waited = await meshq(node.home, ['wait', '--group', 'b'])
    expect(waited.code, `${waited.stderr}${(await meshq(node.home, ['ls', '--group', 'b', '--json'])).stdout}`).toBe(0)
  })

  it('ls shows the newest 100 jobs and says so on stderr when there are more; --all and --limit show more', async () => {
    const lines = Array.from({ length: 120 }, (_, i) => JSON.stringify({ cmd: ['true'], group: 'many', name: `m${i}` })).join('\n')
    await ok(node.home, ['sub', '--batch'], { input: lines })
    const shown = await meshq(node.home, ['ls', '--json'])
    expect(JSON.parse(shown.stdout)).toHaveLength(100)
    expect(shown.stderr).toContain('showing the newest 100 jobs; --limit N or --all for more')
    expect((JSON.parse((await meshq(node.home, ['ls', '--json', '--group', 'many', '--limit', '120'])).stdout) as JobView[]).map(j => j.name)).toContain('m0')
    const all = await meshq(node.home, ['ls', '--all', '--group', 'many'])
    expect(all.stdout.trim().split('\n')).toHaveLength(121) // the header and every job
    expect(all.stderr).toBe('')
    const both = await meshq(node.home, ['ls', '--all', '--limit', '5'])
    expect(both.code).toBe(2)
    expect(both.stderr).toMatch(/--limit and --all contradict/)
  })

  it('says in one line that a --listen address is in use, and exits 1', async () => {
    const self = (await json<PeerView[]>(node.home, ['peers'])).find(p => p.self)
    const taken = self?.addrs.find(a => a.startsWith('/ip4/127.0.0.1/tcp/'))?.split('/p2p/')[0] as string
    const other = await tempDir()
    try {
      const second = await meshq(other.dir, ['node', '--listen', taken])
      expect(second.code).toBe(1)
      // before: libp2p's multi-line error with its stack trace and its own option names
      expect(second.stderr).toBe(`meshq: cannot listen on ${taken}: the address is in use (another meshq node, or another program, listens there); choose other addresses with --listen, e.g. --listen /ip4/0.0.0.0/tcp/7747\n`)
    } finally {
      await other.cleanup()
    }
  })

  it('refuses a second node on the same home', async () => {
    const second = await meshq(node.home, ['node', '--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(second.code).toBe(1)
    expect(second.stderr).toMatch(/already running/)
  })
})

/** The process group of a job's process, found through its MESHQ_JOB_ID environment variable. */
async function findGroupOf (jobId: string): Promise<number | undefined> {
  const { readdir } = await import('node:fs/promises')
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    const env = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '')
    if (env.split('\0').includes(`MESHQ_JOB_ID=${jobId}`)) {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2])
    }
  }
  return undefined
}
