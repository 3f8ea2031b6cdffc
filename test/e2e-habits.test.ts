/**
 * Habits of Slurm and pueue users, end to end through the CLI: script files and `#MESHQ` lines,
 * stdin scripts, `--begin`, the submitter's environment, dependency failure that ends,
 * `--after-any`, exit status 128 + N, and a repeated `--id` within one batch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { json, meshq, ok, startCluster, startNode } from './cluster.js'
import type { TestNode } from './cluster.js'
import { tempDir, waitFor } from './helpers.js'
import type { JobView } from '../src/types.js'

let node: TestNode
let work: { dir: string, cleanup: () => Promise<void> }

beforeAll(async () => {
  work = await tempDir('meshq-habits-')
  node = await startNode({ args: ['--slots', '4', '--kill-grace', '1s'] })
})
afterAll(async () => {
  await node?.cleanup()
  await work?.cleanup()
})

type Options = Parameters<typeof meshq>[2]
const run = async (args: string[], options: Options = {}): ReturnType<typeof meshq> => await meshq(node.home, args, { cwd: work.dir, ...options })
const sub = async (args: string[], options: Options = {}): Promise<string> => (await ok(node.home, ['sub', ...args], { cwd: work.dir, ...options })).trim()
const show = async (id: string): Promise<JobView> => await json<JobView>(node.home, ['show', id])
const jobCount = async (): Promise<number> => (await json<JobView[]>(node.home, ['ls', '--limit', '100000'])).length
const settledJob = async (id: string): Promise<JobView> =>
  await waitFor(async () => { const job = await show(id); return ['done', 'failed', 'killed'].includes(job.state) ? job : undefined }, { what: `${id} to end`, timeout: 60_000 })

describe('script files and #MESHQ lines', () => {
  it('runs a script file with its #MESHQ options; the command line wins; the text is stored in the job', async () => {
    const script = join(work.dir, 'align.sh')
    await writeFile(script, [
      '#!/bin/sh',
      '# a comment between directives is fine',
      '#MESHQ --group align --name from-script',
      '#MESHQ --env WHO=script --env KEPT=yes',
      '#MESHQ --pri 3',
      'echo "run by $WHO $KEPT"',
      '#MESHQ --group ignored-after-the-first-command',
      'exit 5'
    ].join('\n') + '\n')
    await ok(node.home, ['pause', 'align'])
    const id = await sub(['--pri', '7', '--env', 'WHO=flag', 'align.sh'])
    const queued = await show(id)
    expect(queued).toMatchObject({ group: 'align', name: 'from-script', pri: 7, state: 'pending' })
    expect(queued.env).toMatchObject({ WHO: 'flag', KEPT: 'yes' })
    // the job runs the text it was submitted with, not the file as it is later
    await writeFile(script, '#!/bin/sh\necho changed\n')
    await ok(node.home, ['resume', 'align'])
    const job = await settledJob(id)
    expect(job).toMatchObject({ state: 'failed', exitCode: 5 })
    expect(await ok(node.home, ['logs', id])).toBe('run by flag yes\n')
  })

  it('runs a script without #! with sh, and a non-executable one too', async () => {
    await writeFile(join(work.dir, 'plain.sh'), '#MESHQ --name plain\necho "plain $0 ran"\n')
    await chmod(join(work.dir, 'plain.sh'), 0o644)
    const result = await run(['sub', '--wait', 'plain.sh'])
    expect(result).toMatchObject({ code: 0, stdout: expect.stringMatching(/^plain \S+ ran\n$/) })
  })

  it('still runs a sole argument that is not a file, or anything after --, as a command', async () => {
    expect((await run(['sub', '--wait', 'true'])).code).toBe(0)
    await writeFile(join(work.dir, 'exe.sh'), '#!/bin/sh\n#MESHQ --bogus\necho as-command "$@"\n')
    await chmod(join(work.dir, 'exe.sh'), 0o755)
    // after --, a file is a command: its #MESHQ lines are not read
    const result = await run(['sub', '--wait', '--', './exe.sh', 'arg'])
    expect(result).toMatchObject({ code: 0, stdout: 'as-command arg\n' })
  })

  it('submits a script from stdin', async () => {
    const result = await run(['sub', '--wait'], { input: '#!/bin/sh\n#MESHQ --name from-stdin\necho "from stdin"\nexit 3\n' })
    expect(result).toMatchObject({ code: 3, stdout: 'from stdin\n' })
    const [latest] = await json<JobView[]>(node.home, ['ls', '--limit', '1'])
    expect(latest.name).toBe('from-stdin')
  })

  it('refuses a #MESHQ line with an unknown flag as a usage error naming the line, and submits nothing', async () => {
    await writeFile(join(work.dir, 'bad.sh'), '#!/bin/sh\n#MESHQ --group ok\n#MESHQ --partition gpu\necho never\n')
    const before = await jobCount()
    const result = await run(['sub', 'bad.sh'])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/^meshq: bad\.sh line 3: unknown flag --partition/)
    expect(result.stderr.trim().split('\n')).toHaveLength(1)
    const fromStdin = await run(['sub'], { input: '#MESHQ --cores many\ntrue\n' })
    expect(fromStdin.code).toBe(2)
    expect(fromStdin.stderr).toMatch(/^meshq: stdin line 1: bad --cores/)
    expect(await jobCount()).toBe(before)
  })
})

describe('--begin', () => {
  it('holds a job until an absolute time: now+DUR, HH:MM (next) and ISO 8601', async () => {
    const submitted = Date.now()
    const later = await show(await sub(['--begin', 'now+1h', '--', 'true']))
    expect(later.state).toBe('pending')
    expect(later.reason).toMatch(/^delayed until /)
    expect(Date.parse(later.notBefore as string) - submitted).toBeGreaterThan(59 * 60_000)
    expect(Date.parse(later.notBefore as string) - submitted).toBeLessThan(61 * 60_000 + 30_000)

    const clock = await show(await sub(['--begin', '23:59', '--', 'true']))
    const at = new Date(clock.notBefore as string)
    expect([at.getHours(), at.getMinutes()]).toEqual([23, 59])
    expect(at.getTime() - submitted).toBeLessThanOrEqual(24 * 3600_000)

    const iso = await show(await sub(['--begin', '2999-01-02T03:04:05Z', '--', 'true']))
    expect(iso.notBefore).toBe('2999-01-02T03:04:05.000Z')
  })

  it('runs a job whose --begin is in the past now, and says so on stderr', async () => {
    const result = await run(['sub', '--wait', '--begin', '2001-02-03T04:05:06Z', '--', 'echo', 'late'])
    expect(result).toMatchObject({ code: 0, stdout: 'late\n' })
    expect(result.stderr).toMatch(/--begin 2001-02-03T04:05:06.000Z is in the past: the job can start now/)
  })

  it('refuses an unparseable --begin as a usage error, in --batch too', async () => {
    const before = await jobCount()
    for (const value of ['tomorrowish', '25:00', 'now+soon', '2026-13-45T99:00']) {
      const result = await run(['sub', '--begin', value, '--', 'true'])
      expect(result.code, value).toBe(2)
      expect(result.stderr, value).toMatch(/bad --begin/)
    }
    const batch = await run(['sub', '--batch'], { input: '{"cmd": ["true"]}\n{"cmd": ["true"], "begin": "later"}\n' })
    expect(batch).toMatchObject({ code: 2, stderr: expect.stringMatching(/^meshq: line 2: bad begin/) })
    expect(await jobCount()).toBe(before)
  })
})

describe("the submitter's environment", () => {
  const env = { FOO: 'from-submitter', BAR: 'bar', MESHQ_JOIN_TOKEN: 'mq1.secret', MESHQ_OTHER: 'x', SSH_AUTH_SOCK: '/tmp/agent' }
  const printEnv = ['sh', '-c', 'echo "FOO=$FOO BAR=$BAR TOKEN=$MESHQ_JOIN_TOKEN OTHER=$MESHQ_OTHER AGENT=$SSH_AUTH_SOCK"']

  it('is copied by default, without meshq\'s own variables or the login session\'s', async () => {
    const result = await run(['sub', '--wait', '--', ...printEnv], { env })
    expect(result).toMatchObject({ code: 0, stdout: 'FOO=from-submitter BAR=bar TOKEN= OTHER= AGENT=\n' })
    const [latest] = await json<JobView[]>(node.home, ['ls', '--limit', '1'])
    expect(latest.env).toMatchObject({ FOO: 'from-submitter', PATH: process.env.PATH })
    expect(Object.keys(latest.env).filter(k => k.startsWith('MESHQ_') || k === 'SSH_AUTH_SOCK')).toEqual([])
  })

  it('--export NONE, --export K1,K2 narrow it and --env adds to it; --batch copies only what is named', async () => {
    expect((await run(['sub', '--wait', '--export', 'NONE', '--env', 'BAR=set', '--', ...printEnv], { env })).stdout)
      .toBe('FOO= BAR=set TOKEN= OTHER= AGENT=\n')
    expect((await run(['sub', '--wait', '--export', 'FOO,MESHQ_OTHER', '--', ...printEnv], { env })).stdout)
      .toBe('FOO=from-submitter BAR= TOKEN= OTHER=x AGENT=\n')
    // --batch copies only what is named: by default nothing
    const ids = (await ok(node.home, ['sub', '--batch'], {
      env, input: JSON.stringify({ cmd: ['true'] }) + '\n' + JSON.stringify({ cmd: ['true'], export: ['BAR'], env: { K: 'v' } }) + '\n'
    })).trim().split('\n')
    expect((await show(ids[0])).env).toEqual({})
    expect((await show(ids[1])).env).toEqual({ BAR: 'bar', K: 'v' })
    const [all] = (await ok(node.home, ['sub', '--batch', '--export', 'ALL'], { env, input: '{"cmd": ["true"]}\n' })).trim().split('\n')
    expect((await show(all)).env).toMatchObject({ FOO: 'from-submitter', BAR: 'bar' })
  })

  it('refuses an environment over 64 KiB with a clear error and submits nothing', async () => {
    const before = await jobCount()
    const big = { ...env, HUGE: 'x'.repeat(70 * 1024) }
    const result = await run(['sub', '--', 'true'], { env: big })
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/^meshq: the job's environment is \d+ KiB, over the 64 KiB a job may carry: narrow it with --export NONE or --export K1,K2\n$/)
    expect(await jobCount()).toBe(before)
    expect((await run(['sub', '--export', 'FOO', '--', 'true'], { env: big })).code).toBe(0)
  })

  it('refuses a bad --export', async () => {
    for (const value of ['ALL,FOO', 'FOO=1', ',']) {
      const result = await run(['sub', '--export', value, '--', 'true'])
      expect(result.code, value).toBe(2)
      expect(result.stderr, value).toMatch(/bad --export/)
    }
  })
})

describe('dependencies that fail', () => {
  it('fails dependants with dependency-failed so that wait returns; retry of the dependency brings them back', async () => {
    const flag = join(work.dir, 'dep-ok')
    const root = await sub(['--group', 'dep-root', '--', 'sh', '-c', `test -e ${flag}`])
    const child = await sub(['--after', root, '--', 'echo', 'child'])
    const grandchild = await sub(['--after', child, '--', 'echo', 'grandchild'])
    const groupDependant = await sub(['--after-group', 'dep-root', '--', 'echo', 'group'])
    const waited = await run(['wait', grandchild, groupDependant])
    expect(waited.code).toBe(1)
    expect(waited.stderr).toContain(`job ${grandchild} failed: dependency-failed: job ${child} failed`)
    expect(waited.stderr).toContain(`job ${groupDependant} failed: dependency-failed: job ${root} of group dep-root failed`)
    expect(await show(child)).toMatchObject({ state: 'failed', reason: `dependency-failed: job ${root} failed`, attempts: [] })

    await writeFile(flag, '')
    await ok(node.home, ['retry', root])
    expect((await run(['wait', grandchild, groupDependant])).code).toBe(0)
    expect(await ok(node.home, ['logs', grandchild])).toBe('grandchild\n')
    expect((await show(child)).state).toBe('done')
  })

  it('a killed dependency fails its dependants too', async () => {
    const sleeper = await sub(['--', 'sleep', '600'])
    const dependant = await sub(['--after', sleeper, '--', 'true'])
    await waitFor(async () => (await show(sleeper)).state === 'running', { what: 'the sleeper to run' })
    await ok(node.home, ['kill', sleeper])
    expect(await settledJob(dependant)).toMatchObject({ state: 'failed', reason: `dependency-failed: job ${sleeper} killed` })
  })

  it('--after-any and --after-group-any run once their dependencies end, whatever the outcome', async () => {
    const failing = await sub(['--group', 'any-g', '--', 'false'])
    await sub(['--group', 'any-g', '--', 'true'])
    const afterAny = await sub(['--after-any', failing, '--', 'echo', 'cleanup'])
    const afterGroupAny = await sub(['--after-group-any', 'any-g', '--', 'echo', 'report'])
    expect((await run(['wait', afterAny, afterGroupAny])).code).toBe(0)
    expect(await ok(node.home, ['logs', afterAny])).toBe('cleanup\n')
    expect(await show(afterAny)).toMatchObject({ afterAny: [failing] })
    expect(await show(afterGroupAny)).toMatchObject({ afterGroupAny: ['any-g'] })
  })

  it('takes afterAny and afterGroupAny as --batch fields, with #N for an earlier line', async () => {
    const ids = (await ok(node.home, ['sub', '--batch'], {
      input: '{"cmd": ["false"], "group": "batch-any"}\n{"cmd": ["echo", "after"], "afterAny": ["#1"]}\n{"cmd": ["true"], "after-group-any": "batch-any"}\n'
    })).trim().split('\n')
    expect((await run(['wait', ids[1], ids[2]])).code).toBe(0)
    expect((await show(ids[1])).afterAny).toEqual([ids[0]])
  })
})

describe('shell conventions', () => {
  it('sub --wait and wait exit 128 + N for a job a signal N ended', async () => {
    const term = await run(['sub', '--wait', '--', 'sh', '-c', 'kill -TERM $$'])
    expect(term.code).toBe(143)
    const killed = await run(['sub', '--wait', '--', 'sh', '-c', 'kill -KILL $$'])
    expect(killed.code).toBe(137)
    const [latest] = await json<JobView[]>(node.home, ['ls', '--limit', '1'])
    expect((await run(['wait', latest.id])).code).toBe(137)

    const sleeper = await sub(['--', 'sleep', '600'])
    await waitFor(async () => (await show(sleeper)).state === 'running', { what: 'the sleeper to run' })
    const waiting = run(['wait', sleeper])
    await ok(node.home, ['kill', sleeper])
    expect((await waiting).code).toBe(143)
    // an exit code stays the exit code
    expect((await run(['sub', '--wait', '--', 'sh', '-c', 'exit 7'])).code).toBe(7)
  })

  it('a repeated --id within one --batch names the one job', async () => {
    const before = await jobCount()
    const ids = (await ok(node.home, ['sub', '--batch'], {
      input: '{"cmd": ["echo", "first"], "id": "same-key"}\n{"cmd": ["echo", "second"], "id": "same-key"}\n{"cmd": ["true"], "after": ["#2"]}\n'
    })).trim().split('\n')
    expect(ids[1]).toBe(ids[0])
    expect(await jobCount()).toBe(before + 2)
    expect((await show(ids[2])).after).toEqual([ids[0]])
    expect((await run(['wait', ids[2]])).code).toBe(0)
    expect(await ok(node.home, ['logs', ids[0]])).toBe('first\n')
  })
})

describe('two nodes', () => {
  let nodes: TestNode[] = []
  beforeAll(async () => { nodes = await startCluster(2) }, 90_000)
  afterAll(async () => { await Promise.all(nodes.map(async n => await n.cleanup())) })

  it('a dependant on another node ends dependency-failed, and wait there returns', async () => {
    const [a, b] = nodes
    const root = (await ok(a.home, ['sub', '--', 'false'])).trim()
    await json(b.home, ['show', root]) // catches up: b knows the job before it takes a dependant on it
    const dependant = (await ok(b.home, ['sub', '--after', root, '--', 'true'])).trim()
    const waited = await meshq(b.home, ['wait', dependant])
    expect(waited.code).toBe(1)
    expect(waited.stderr).toContain(`dependency-failed: job ${root} failed`)
  })
})
