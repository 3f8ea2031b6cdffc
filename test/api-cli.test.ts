/**
 * The built CLI (dist/cli/main.js, built by test/global-setup.ts) against a fake engine served on
 * a temporary home's socket.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { controlServer, type ControlServer } from '../src/api/server.js'
import { COMMANDS } from '../src/cli/commands/index.js'
import type { JobView } from '../src/types.js'
import { FakeEngine, until } from './api-fake-engine.js'

const MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url))

interface Result { code: number | null, stdout: string, stderr: string }

/** Runs the CLI; the returned `exited` resolves when it ends. */
function cli (args: string[], options: { home?: string, stdin?: string, cwd?: string } = {}): { exited: Promise<Result> } {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' }
  delete env.MESHQ_HOME
  const child = spawn(process.execPath, [MAIN, ...(options.home === undefined ? [] : ['--home', options.home]), ...args], {
    env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', c => { stdout += String(c) })
  child.stderr.on('data', c => { stderr += String(c) })
  child.stdin.end(options.stdin)
  const exited = new Promise<Result>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', code => resolve({ code, stdout, stderr }))
  })
  return { exited }
}

const meshq = async (args: string[], options?: { home?: string, stdin?: string, cwd?: string }): Promise<Result> => await cli(args, options).exited

describe('meshq without a node', () => {
  it('prints --help for every command and exits 0', async () => {
    const results = await Promise.all([...COMMANDS.keys()].map(async name => [name, await meshq([name, '--help'])] as const))
    for (const [name, result] of results) {
      expect(result.code, name).toBe(0)
      expect(result.stdout).toMatch(new RegExp(`^Usage: meshq ${name}`))
    }
  })

  it('exits 2 without a command, on an unknown command or flag, on a bad duration', async () => {
    const [none, unknown, flag, duration] = await Promise.all([
      meshq([]), meshq(['frobnicate']), meshq(['ls', '--frob']), meshq(['sub', '--ttr', '10 minutes', '--', 'true'])
    ])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/^Usage: meshq/)
    expect(unknown).toMatchObject({ code: 2, stderr: "meshq: unknown command 'frobnicate' (see 'meshq help')\n" })
    expect(flag).toMatchObject({ code: 2, stderr: "meshq: unknown flag --frob for 'meshq ls' (see 'meshq ls --help')\n" })
    expect(duration.code).toBe(2)
    expect(duration.stderr).toMatch(/^meshq: bad --ttr: '10 minutes'/)
  })

  it('exits 3 when the node is unreachable, with a JSON error under --json', async () => {
    const home = join(tmpdir(), 'meshq-nowhere-' + process.pid)
    const plain = await meshq(['ls'], { home })
    expect(plain).toEqual({ code: 3, stdout: '', stderr: `meshq: cannot reach the meshq node at ${home}: is \`meshq node\` running?\n` })
    const json = await meshq(['ls', '--json'], { home })
    expect(json.code).toBe(3)
    expect(JSON.parse(json.stderr)).toEqual({ error: { name: 'NodeUnreachableError', message: `cannot reach the meshq node at ${home}: is \`meshq node\` running?` } })
  })

  it('prints the version', async () => {
    expect(await meshq(['--version'])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^\d+\.\d+\.\d+\n$/) })
  })
})

describe('meshq against a node', () => {
  let home: string
  let engine: FakeEngine
  let server: ControlServer

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'meshq-cli-'))
    engine = new FakeEngine()
    server = controlServer({ engine, socketPath: join(home, 'meshq.sock') })
    await server.start()
  })

  afterAll(async () => {
    await server?.stop()
    await rm(home, { recursive: true, force: true })
  })

  it('sub --json prints the job record; sub prints the id', async () => {
    const result = await meshq(['sub', '--json', '--group', 'g', '--ttr', '2s', 'echo', 'hi', '--json'], { home, cwd: home })
    expect(result.code).toBe(0)
    const job = JSON.parse(result.stdout) as JobView
    expect(job).toMatchObject({ cmd: ['echo', 'hi', '--json'], group: 'g', ttrMs: 2000, cwd: home, state: 'ready' })
    expect(engine.jobs.get(job.id)?.cmd).toEqual(['echo', 'hi', '--json'])
    const plain = await meshq(['sub', '--', 'true'], { home })
    expect(plain.stdout).toMatch(/^j\d+\n$/)
  })

  it('sub --batch submits all or nothing and names the bad line', async () => {
    const before = engine.jobs.size
    const bad = await meshq(['sub', '--batch', '--group', 'b'], { home, stdin: '{"cmd": ["a"]}\n{"cmd": "b"}\n' })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/^meshq: line 2: cmd must be an array/)
    expect(engine.jobs.size).toBe(before)
    const good = await meshq(['sub', '--batch', '--group', 'b'], { home, stdin: '{"cmd": ["a"]}\n{"cmd": ["b"], "group": "c"}\n' })
    expect(good.code).toBe(0)
    const ids = good.stdout.trim().split('\n')
    expect(ids.map(id => engine.jobs.get(id)?.group)).toEqual(['b', 'c'])
  })

  it('ls prints a table, newest first; --json the records', async () => {
    const { stdout } = await meshq(['sub', '--name', 'listed', '--group', 'lsg', 'sleep', '1'], { home })
    const id = stdout.trim()
    const table = await meshq(['ls', '--group', 'lsg'], { home })
    expect(table.code).toBe(0)
    const [header, row] = table.stdout.trim().split('\n')
    expect(header.split(/\s+/)).toEqual(['ID', 'STATE', 'PRI', 'GROUP', 'NAME/CMD', 'TIME', 'REASON'])
    expect(row.split(/\s+/).slice(0, 5)).toEqual([id, 'ready', '0', 'lsg', 'listed'])
    const json = await meshq(['ls', '--json', '--limit', '1'], { home })
    expect((JSON.parse(json.stdout) as JobView[]).map(j => j.id)).toEqual([[...engine.jobs.keys()].at(-1)])
  })

  it('show prints the job and its attempts; a missing job exits 1', async () => {
    const [job] = await engine.submit([{ cmd: ['sh', '-c', 'exit 3'], cwd: '/tmp' }])
    engine.start(job.id)
    engine.finish(job.id, 'failed', 3, 'non-zero-exit')
    const shown = await meshq(['show', job.id], { home })
    expect(shown.code).toBe(0)
    expect(shown.stdout).toMatch(/^state:\s+failed$/m)
    expect(shown.stdout).toMatch(/^cmd:\s+sh -c 'exit 3'$/m)
    expect(shown.stdout).toMatch(/^attempts:\n\s+EPOCH\s+NODE.*\n\s+1\s+12D3KooWFakeSelf/m)
    expect(JSON.parse((await meshq(['show', job.id, '--json'], { home })).stdout)).toMatchObject({ id: job.id, exitCode: 3 })
    expect(await meshq(['show', 'nope'], { home })).toMatchObject({ code: 1, stderr: 'meshq: no such job: nope\n' })
  })

  it('wait exits 0 when all succeed, 1 when one fails or is removed', async () => {
    const [a, b] = await engine.submit([{ cmd: ['a'], group: 'w' }, { cmd: ['b'], group: 'w' }])
    let subscriptions = engine.subscriptions
    const waiting = cli(['wait', a.id, b.id], { home }).exited
    await until(() => engine.subscriptions > subscriptions, 10_000, 'wait to subscribe')
    engine.start(a.id)
    engine.finish(a.id, 'done', 0)
    engine.start(b.id)
    engine.finish(b.id, 'done', 0)
    expect(await waiting).toEqual({ code: 0, stdout: '', stderr: '' })

    const [c, d] = await engine.submit([{ cmd: ['c'], group: 'w2' }, { cmd: ['d'], group: 'w2' }])
    subscriptions = engine.subscriptions
    const group = cli(['wait', '--group', 'w2', '--json'], { home }).exited
    await until(() => engine.subscriptions > subscriptions, 10_000, 'wait --group to subscribe')
    await until(() => engine.calls.some(c => c.method === 'list' && (c.args[0] as { group?: string }).group === 'w2'), 10_000, 'the group to be listed')
    engine.start(c.id)
    engine.finish(c.id, 'failed', 2)
    await engine.remove({ ids: [d.id] })
    const result = await group
    expect(result.code).toBe(1)
    expect(result.stderr.split('\n').sort()).toEqual(['', `meshq: job ${c.id} failed: exit 2`, `meshq: job ${d.id} was removed`].sort())
    expect((JSON.parse(result.stdout) as JobView[]).map(j => j.id)).toEqual([c.id])

    expect(await meshq(['wait', 'nope'], { home })).toMatchObject({ code: 1, stderr: 'meshq: job nope not found\n' })
  })

  it('sub --wait streams the output and exits with the exit code', async () => {
    const before = new Set(engine.jobs.keys())
    const running = cli(['sub', '--wait', '--', 'sh', '-c', 'work'], { home }).exited
    let id = ''
    await until(() => {
      id = [...engine.jobs.keys()].find(k => !before.has(k)) ?? ''
      return id !== ''
    }, 10_000, 'the submit')
    engine.start(id)
    engine.write(id, 'stdout', 'out 1\n')
    engine.write(id, 'stderr', 'err 1\n')
    await until(() => engine.openReaders === 2, 10_000, 'both logs to be followed')
    engine.write(id, 'stdout', 'out 2\n')
    engine.finish(id, 'failed', 7)
    expect(await running).toEqual({ code: 7, stdout: 'out 1\nout 2\n', stderr: 'err 1\n' })
  })

  it('sub --wait exits 1 with the reason when the job fails without an exit code', async () => {
    const before = new Set(engine.jobs.keys())
    const running = cli(['sub', '--wait', 'true'], { home }).exited
    await until(() => engine.jobs.size > before.size, 10_000, 'the submit')
    const id = [...engine.jobs.keys()].find(k => !before.has(k)) as string
    await engine.kill({ ids: [id] })
    const result = await running
    expect(result).toMatchObject({ code: 1, stdout: '' })
    expect(result.stderr).toBe(`meshq: job ${id} killed: killed\n`)
  })

  it('logs prints the raw output; kill, rm, pause, peers and stats work', async () => {
    const [job] = await engine.submit([{ cmd: ['x'], group: 'k' }])
    engine.start(job.id)
    engine.write(job.id, 'stdout', 'bytes\x00\xff')
    engine.finish(job.id, 'done', 0)
    expect((await meshq(['logs', job.id], { home })).stdout).toBe('bytes\x00\xff')
    expect(await meshq(['kill', '--group', 'k'], { home })).toMatchObject({ code: 0, stdout: `${job.id}\n` })
    expect(await meshq(['rm', job.id, '--json'], { home })).toMatchObject({ code: 0 })
    expect(engine.jobs.has(job.id)).toBe(false)
    expect(await meshq(['kill'], { home })).toMatchObject({ code: 2 })
    expect(await meshq(['pause', 'k', '--for', '1m'], { home })).toMatchObject({ code: 0, stdout: 'paused k for 1m0s\n' })
    expect(engine.calls.at(-1)).toEqual({ method: 'pause', args: ['k', 60_000] })
    expect(JSON.parse((await meshq(['peers', '--json'], { home })).stdout)[0]).toMatchObject({ self: true, tags: ['gpu'] })
    expect((await meshq(['stats'], { home })).stdout).toMatch(/^STATE\s+JOBS$/m)
  })
})
