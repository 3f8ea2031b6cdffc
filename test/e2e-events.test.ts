import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, json, meshq, ok, startNode } from './cluster.js'
import type { TestNode } from './cluster.js'
import { tempDir, waitFor } from './helpers.js'
import type { JobEvent, JobView, PeerView } from '../src/types.js'

/** A runs the jobs tagged `a` (B has no tags); B is where the events are read. */
let a: TestNode
let b: TestNode
let work: Awaited<ReturnType<typeof tempDir>>
const followers: Array<ReturnType<typeof spawn>> = []

beforeAll(async () => {
  work = await tempDir()
  a = await startNode({ args: ['--tags', 'a', '--slots', '2'] })
  const token = (await ok(a.home, ['invite'])).trim()
  b = await startNode({ args: ['--join', token, '--slots', '2'] })
  await waitFor(async () => {
    const views = await Promise.all([a, b].map(async n => await json<PeerView[]>(n.home, ['peers'])))
    return views.every(peers => peers.length === 2 && peers.every(p => p.state === 'up'))
  }, { what: 'both nodes up', timeout: 30_000 })
}, 90_000)

afterAll(async () => {
  for (const f of followers) f.kill('SIGKILL')
  for (const n of [a, b]) await n?.cleanup()
  await work.cleanup()
})

async function eventsOf (node: TestNode, args: string[] = []): Promise<JobEvent[]> {
  const out = await ok(node.home, ['events', '--json', '--limit', '10000', ...args])
  return out.split('\n').filter(line => line !== '').map(line => JSON.parse(line) as JobEvent)
}

async function waitState (node: TestNode, id: string, state: string): Promise<JobView> {
  return await waitFor(async () => {
    const job = await json<JobView>(node.home, ['show', id])
    return job.state === state ? job : undefined
  }, { what: `${id} ${state}`, timeout: 60_000 })
}

/** `meshq events --follow` as a child process, with the JSON lines it has printed so far. */
function follow (node: TestNode, args: string[]): { lines: () => JobEvent[] } {
  const child = spawn(process.execPath, [CLI, 'events', '--follow', '--json', ...args], {
    env: { ...process.env, MESHQ_HOME: node.home, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  followers.push(child)
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  return { lines: () => out.split('\n').filter(line => line.endsWith('}')).map(line => JSON.parse(line) as JobEvent) }
}

describe('meshq events', () => {
  it('reports on one node the jobs run on another: submitted, started, done, failed with reason', async () => {
    const okId = (await ok(a.home, ['sub', '--tag', 'a', '--name', 'fine', '--', 'true'])).trim()
    const badId = (await ok(a.home, ['sub', '--tag', 'a', '--', 'sh', '-c', 'exit 3'])).trim()
    const runner = (await waitState(a, okId, 'done')).node
    await waitState(a, badId, 'failed')
    const seen = await waitFor(async () => {
      const events = await eventsOf(b)
      const kinds = (id: string): string[] => events.filter(e => e.job === id).map(e => e.event)
      return kinds(okId).join() === 'submitted,started,done' && kinds(badId).join() === 'submitted,started,failed' ? events : undefined
    }, { what: 'the events on the other node', timeout: 30_000 })
    const failed = seen.find(e => e.job === badId && e.event === 'failed')
    expect(failed).toMatchObject({ exitCode: 3, failReason: 'non-zero-exit', node: runner })
    expect(seen.find(e => e.job === okId && e.event === 'started')?.node).toBe(runner)
    expect(seen.find(e => e.job === okId && e.event === 'submitted')).toMatchObject({ name: 'fine' })

    const human = await ok(b.home, ['events', '--state', 'failed'])
    const line = human.split('\n').find(l => l.includes(badId))
    expect(line).toMatch(/^\S+Z {2}\S+ {2}failed +\S+ {2}exit 3$/)
    expect(human).not.toContain(okId)
  })

  it('follows failures only, cluster-wide; a failure with retries left is "retried"', async () => {
    // history first: the follower's first line proves its subscription is in place
    const earlier = (await ok(a.home, ['sub', '--tag', 'a', '--', 'sh', '-c', 'exit 5'])).trim()
    await waitFor(async () => (await eventsOf(b, ['--state', 'failed'])).some(e => e.job === earlier), { what: 'the first failure on B' })
    const failures = follow(b, ['--state', 'failed'])
    const everything = follow(b, ['--limit', '0'])
    await waitFor(() => failures.lines().some(e => e.job === earlier), { what: 'the follower to print history' })

    const flaky = (await ok(a.home, ['sub', '--tag', 'a', '--retries', '1', '--', 'sh', '-c', 'exit 4'])).trim()
    await waitState(a, flaky, 'failed')
    await waitFor(() => failures.lines().some(e => e.job === flaky), { what: 'the followed failure', timeout: 30_000 })
    const mine = failures.lines().filter(e => e.job === flaky)
    expect(mine).toHaveLength(1)
    expect(mine[0]).toMatchObject({ event: 'failed', exitCode: 4, epoch: 2 })
    expect(failures.lines().every(e => e.event === 'failed')).toBe(true)

    const all = await waitFor(() => {
      const lines = everything.lines().filter(e => e.job === flaky)
      return lines.some(e => e.event === 'failed') ? lines : undefined
    }, { what: 'every event of the flaky job', timeout: 30_000 })
    expect(all.map(e => e.event)).toEqual(['submitted', 'started', 'retried', 'started', 'failed'])
    expect(all.find(e => e.event === 'retried')).toMatchObject({ exitCode: 4, detail: 'retry 1/1' })
    expect(everything.lines().some(e => e.job === earlier), '--limit 0 prints no history').toBe(false)
  })

  it('reports kills, retries and removals requested anywhere', async () => {
    const slow = (await ok(a.home, ['sub', '--tag', 'a', '--', 'sleep', '60'])).trim()
    await waitState(a, slow, 'running')
    await ok(b.home, ['kill', slow])
    await waitState(a, slow, 'killed')
    await ok(b.home, ['retry', slow])
    await waitState(a, slow, 'running')
    await ok(a.home, ['kill', slow])
    await waitState(b, slow, 'killed')
    await ok(b.home, ['rm', slow])
    const kinds = await waitFor(async () => {
      const seen = (await eventsOf(a)).filter(e => e.job === slow).map(e => e.event)
      return seen.includes('removed') ? seen : undefined
    }, { what: 'the removal on A' })
    expect(kinds).toEqual(['submitted', 'started', 'killed', 'retried', 'started', 'killed', 'removed'])
  })

  it('refuses an unknown event name', async () => {
    const result = await meshq(b.home, ['events', '--state', 'exploded'])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/bad --state: 'exploded'/)
  })
})

describe('meshq rm --group --json', () => {
  it('removes the jobs of a group that are not running, as lines that sub --batch takes back', async () => {
    const file = join(work.dir, 'requeue.txt')
    const running = (await ok(a.home, ['sub', '--tag', 'a', '--group', 'rq', '--', 'sleep', '60'])).trim()
    await waitState(a, running, 'running')
    await ok(a.home, ['pause', 'rq'])
    const first = (await ok(a.home, ['sub', '--group', 'rq', '--name', 'first', '--pri', '3', '--retries', '2', '--ttr', '45s', '--env', 'WORD=one',
      '--cwd', work.dir, '--', 'sh', '-c', `echo $WORD >> ${file}`])).trim()
    const second = (await ok(a.home, ['sub', '--group', 'rq', '--after', first, '--tag', 'a', '--cwd', work.dir, '--', 'sh', '-c', `echo two >> ${file}`])).trim()
    const originals = await Promise.all([first, second].map(async id => await json<JobView>(a.home, ['show', id])))

    const lines = (await ok(a.home, ['rm', '--group', 'rq', '--json'])).trim().split('\n')
    expect(lines).toHaveLength(2)
    const parsed = lines.map(l => JSON.parse(l))
    expect(parsed[0]).toMatchObject({ cmd: ['sh', '-c', `echo $WORD >> ${file}`], name: 'first', group: 'rq', pri: 3, retries: 2, ttr: 45_000, env: { WORD: 'one' }, cwd: work.dir })
    expect(parsed[1]).toMatchObject({ after: ['#1'], tag: ['a'], group: 'rq' })
    expect((await json<JobView[]>(a.home, ['ls', '--group', 'rq'])).map(j => j.id)).toEqual([running])

    const ids = (await ok(b.home, ['sub', '--batch'], { input: lines.join('\n') + '\n' })).trim().split('\n')
    expect(ids).toHaveLength(2)
    const again = await Promise.all(ids.map(async id => await json<JobView>(b.home, ['show', id])))
    const submitted = (j: JobView): Partial<JobView> => ({ cmd: j.cmd, cwd: j.cwd, env: j.env, name: j.name, group: j.group, pri: j.pri, retries: j.retries, ttrMs: j.ttrMs, tags: j.tags, cores: j.cores, afterGroup: j.afterGroup })
    expect(again.map(submitted)).toEqual(originals.map(submitted))
    expect(again[1].after).toEqual([ids[0]])

    await ok(a.home, ['kill', running])
    await ok(b.home, ['resume', 'rq'])
    expect((await meshq(b.home, ['wait', ...ids], { timeout: 90_000 })).code).toBe(0)
    expect(await readFile(file, 'utf8')).toBe('one\ntwo\n')
  })
})

describe('meshq sub --expand', () => {
  it('runs the generator, the jobs it printed, then the command', async () => {
    const dir = work.dir
    const lines = [1, 2, 3].map(n => JSON.stringify({ cmd: ['sh', '-c', `echo ${n} >> parts.txt`], name: `part ${n}` }))
    await writeFile(join(dir, 'gen.sh'), `printf '%s\\n' ${lines.map(l => `'${l}'`).join(' ')}\n`)
    const cmd = (await ok(b.home, ['sub', '--cwd', dir, '--expand', 'sh gen.sh', '--', 'sh', '-c', 'wc -l < parts.txt > count.txt'])).trim()
    const job = await waitState(b, cmd, 'done')
    expect((await readFile(join(dir, 'count.txt'), 'utf8')).trim()).toBe('3')
    const gen = job.after[0]
    expect(job.afterGroup).toEqual([`expand:${gen}`])
    const parts = await json<JobView[]>(a.home, ['ls', '--group', `expand:${gen}`])
    expect(parts.map(p => p.name).sort()).toEqual(['part 1', 'part 2', 'part 3'])
    expect(parts.every(p => p.state === 'done')).toBe(true)
    expect((await json<JobView>(a.home, ['show', gen])).attempts.at(-1)?.tail).toMatch(/submitted 3 job\(s\) to group expand:/)
  })

  it('runs the command when the generator prints nothing', async () => {
    const cmd = (await ok(a.home, ['sub', '--cwd', work.dir, '--expand', 'true', '--', 'true'])).trim()
    await waitState(a, cmd, 'done')
  })

  it('fails the generator on a bad line, submits nothing, and the command fails (dependency-failed) without running', async () => {
    const good = JSON.stringify({ cmd: ['true'] })
    const cmd = (await ok(a.home, ['sub', '--cwd', work.dir, '--expand', `printf '%s\\n' '${good}' '{"cmd": "true"}'`, '--', 'true'])).trim()
    const gen = (await json<JobView>(a.home, ['show', cmd])).after[0]
    const failed = await waitState(b, gen, 'failed')
    expect(failed.attempts.at(-1)).toMatchObject({ exitCode: 0, failReason: 'expand-failed' })
    expect(failed.attempts.at(-1)?.tail).toMatch(/meshq --expand: line 2: cmd must be an array of strings.*nothing was submitted/)
    expect(await json<JobView[]>(b.home, ['ls', '--group', `expand:${gen}`])).toEqual([])
    const ended = await waitFor(async () => {
      const job = await json<JobView>(b.home, ['show', cmd])
      return job.state === 'failed' ? job : undefined
    }, { what: 'the command to fail' })
    expect(ended).toMatchObject({ reason: `dependency-failed: job ${gen} failed`, attempts: [] })
  })
})
