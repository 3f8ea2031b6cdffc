/**
 * Where jobs run, end to end through the CLI on a real 2-node mesh: hooks (on the node that ran the
 * job), private working directories, memory limits and `--out`.
 */
import { readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { JobView, PeerView } from '../src/types.js'
import { CLI, json, meshq, ok, startNode, type TestNode } from './cluster.js'
import { tempDir, waitFor } from './helpers.js'

let alpha: TestNode
let beta: TestNode
let betaId: string
let work: { dir: string, cleanup: () => Promise<void> }

beforeAll(async () => {
  work = await tempDir('meshq-features-')
  alpha = await startNode({ args: ['--tags', 'alpha', '--kill-grace', '1s'] })
  const token = (await ok(alpha.home, ['invite'])).trim()
  beta = await startNode({ args: ['--join', token, '--tags', 'beta', '--kill-grace', '1s'] })
  await waitFor(async () => {
    const views = await Promise.all([alpha, beta].map(async node => await json<PeerView[]>(node.home, ['peers'])))
    return views.every(peers => peers.length === 2 && peers.every(peer => peer.state === 'up'))
  }, { what: 'both nodes to see each other up', timeout: 60_000 })
  betaId = (await json<PeerView[]>(beta.home, ['peers'])).find(peer => peer.self)?.id as string
}, 120_000)

afterAll(async () => {
  await Promise.all([alpha?.cleanup(), beta?.cleanup()])
  await work?.cleanup()
})

/** Submits on node alpha; returns the job id. */
const sub = async (...args: string[]): Promise<string> => (await ok(alpha.home, ['sub', '--cwd', work.dir, ...args])).trim()
const show = async (id: string): Promise<JobView> => await json<JobView>(alpha.home, ['show', id])
const settled = async (id: string, state: string): Promise<JobView> =>
  await waitFor(async () => { const job = await show(id); return job.state === state ? job : undefined }, { what: `${id} to be ${state}`, timeout: 60_000 })
const exists = async (path: string): Promise<boolean> => await stat(path).then(() => true, () => false)
/** A file a hook writes (whole, by renaming it into place): it appears after the job's state changed, so wait for it. */
const written = async (file: string): Promise<string> =>
  await waitFor(async () => await readFile(file, 'utf8').catch(() => undefined), { what: `${file} to be written`, timeout: 60_000 })

describe('hooks', () => {
  it('run on the node that ran the job, with the attempt in their environment, once it is recorded', async () => {
    const marker = join(work.dir, 'success-env')
    const record = join(work.dir, 'success-record')
    const id = await sub('--tag', 'beta',
      '--on-success', `{ echo "$MESHQ_NODE $MESHQ_JOB_ID $MESHQ_ATTEMPT $MESHQ_EXIT_CODE [$MESHQ_FAIL_REASON] $MESHQ_JOB_STATE"; cat "$MESHQ_STDOUT"; echo "$MESHQ_STDERR"; } > ${marker}.part && mv ${marker}.part ${marker}`,
      '--on-exit', `"${process.execPath}" "${CLI}" show "$MESHQ_JOB_ID" --json > ${record}.part && mv ${record}.part ${record}`,
      '--', 'sh', '-c', 'echo from-the-job')
    const job = await settled(id, 'done')
    expect(job.node).toBe(betaId)
    const [summary, stdout, stderrPath] = (await written(marker)).trim().split('\n')
    expect(summary).toBe(`${betaId} ${id} ${job.attempts[0].epoch} 0 [] done`)
    expect(stdout).toBe('from-the-job')
    expect(stderrPath).toBe(join(beta.home, 'output', id, `${job.attempts[0].epoch}.stderr`))
    // `meshq` in a hook talks to the node that ran the job, which already has the attempt's end
    expect(JSON.parse(await written(record))).toMatchObject({ id, state: 'done', node: betaId })
  })

  it('on-failure runs once, when no retry is left; on-exit after every attempt; neither changes the state', async () => {
    const failures = join(work.dir, 'failures')
    const exits = join(work.dir, 'exits')
    const id = await sub('--tag', 'beta', '--retries', '1',
      '--on-failure', `echo "$MESHQ_ATTEMPT $MESHQ_EXIT_CODE $MESHQ_FAIL_REASON $MESHQ_JOB_STATE" >> ${failures}; exit 9`,
      '--on-exit', `echo "$MESHQ_ATTEMPT $MESHQ_JOB_STATE" >> ${exits}`,
      '--on-success', `touch ${join(work.dir, 'never')}`,
      '--', 'sh', '-c', 'exit 3')
    const job = await settled(id, 'failed')
    const [first, second] = job.attempts.map(a => a.epoch)
    await waitFor(async () => (await readFile(exits, 'utf8').catch(() => '')).split('\n').length === 3, { what: 'two on-exit hooks', timeout: 60_000 })
    expect(await readFile(exits, 'utf8')).toBe(`${first} pending\n${second} failed\n`)
    expect(await readFile(failures, 'utf8')).toBe(`${second} 3 non-zero-exit failed\n`)
    expect(await exists(join(work.dir, 'never'))).toBe(false)
    expect((await show(id)).state).toBe('failed')
    // the failing hook is logged next to the attempt's output, on the node that ran it
    expect(await readFile(join(beta.home, 'output', id, `${second}.hooks`), 'utf8')).toBe('[meshq: on-failure hook exited 9]\n')
  })

  it('work from sub --batch fields, and show lists them', async () => {
    const marker = join(work.dir, 'batch-exit')
    const line = JSON.stringify({ cmd: ['true'], tag: 'alpha', onExit: `echo "$MESHQ_NODE" > ${marker}`, tmpdir: true, cleanup: true, mem: '200M' })
    const [id] = (await ok(alpha.home, ['sub', '--batch', '--cwd', work.dir], { input: line + '\n' })).trim().split('\n')
    const job = await settled(id, 'done')
    expect(job).toMatchObject({ onExit: `echo "$MESHQ_NODE" > ${marker}`, tmpdir: true, cleanup: true, memBytes: 200 * 2 ** 20 })
    expect((await written(marker)).trim()).toBe(job.node)
    const details = await ok(alpha.home, ['show', id])
    expect(details).toMatch(/^on-exit: +echo "\$MESHQ_NODE"/m)
    expect(details).toMatch(/^mem: +200\.0M$/m)
    expect(details).toMatch(/^tmpdir: +yes, always removed$/m)
  })
})

describe('private working directories', () => {
  /** The job's directory: `<cwd>/.meshq-<job>-<epoch>-<random>`, while it exists. */
  const privateDir = async (job: JobView): Promise<string> => {
    const name = (await readdir(work.dir)).find(n => n.startsWith(`.meshq-${job.id}-${job.attempts[0].epoch}-`))
    return join(work.dir, name ?? 'gone')
  }

  it('--tmpdir runs the job in a fresh directory under its cwd, which is TMPDIR, removed after success', async () => {
    const where = join(work.dir, 'tmpdir-where')
    const id = await sub('--tmpdir', '--', 'sh', '-c', `pwd > ${where}; echo "$TMPDIR" >> ${where}; touch left-behind`)
    const job = await settled(id, 'done')
    const [dir, tmp] = (await readFile(where, 'utf8')).split('\n')
    expect(dir).toMatch(new RegExp(`^${work.dir}/\\.meshq-${job.id}-${job.attempts[0].epoch}-\\w{6}$`))
    expect(tmp).toBe(dir)
    await waitFor(async () => !await exists(dir), { what: 'the private directory to be removed', timeout: 60_000 })
    expect(await exists(join(work.dir, 'left-behind'))).toBe(false)
  })

  it('a failed attempt keeps its directory; --cleanup removes it; --keep-tmpdir keeps a success\'s', async () => {
    const failed = await settled(await sub('--tmpdir', '--on-exit', 'touch hook-ran', '--', 'sh', '-c', 'touch evidence; exit 1'), 'failed')
    await waitFor(async () => await exists(join(await privateDir(failed), 'hook-ran')), { what: 'the on-exit hook, run in the private directory', timeout: 60_000 })
    expect(await readdir(await privateDir(failed))).toEqual(['evidence', 'hook-ran'])

    const cleaned = await settled(await sub('--tmpdir', '--cleanup', '--', 'sh', '-c', 'exit 1'), 'failed')
    const kept = await settled(await sub('--tmpdir', '--keep-tmpdir', '--', 'touch', 'result'), 'done')
    await waitFor(async () => !await exists(await privateDir(cleaned)), { what: 'the cleaned-up directory to be removed', timeout: 60_000 })
    expect(await readdir(await privateDir(kept))).toEqual(['result'])
  })

  it('refuses --keep-tmpdir or --cleanup without --tmpdir, and both together', async () => {
    for (const [flags, message] of [
      [['--keep-tmpdir'], /keepTmpdir needs tmpdir/],
      [['--cleanup'], /cleanup needs tmpdir/],
      [['--tmpdir', '--cleanup', '--keep-tmpdir'], /cleanup and keepTmpdir contradict each other/]
    ] as const) {
      const result = await meshq(alpha.home, ['sub', ...flags, '--', 'true'])
      expect(result.code).not.toBe(0)
      expect(result.stderr.trim().split('\n')).toHaveLength(1)
      expect(result.stderr).toMatch(message)
    }
  })
})

describe('memory limits and resource readings', () => {
  it('--mem kills a job that allocates more, with fail reason memory, and show reports its peak RSS', async () => {
    const allocate = `const b = Buffer.alloc(300 * 2 ** 20, 1); setTimeout(() => {}, 600000)`
    const id = await sub('--mem', '100M', '--', process.execPath, '-e', allocate)
    const job = await settled(id, 'failed')
    expect(job.reason).toBe('memory')
    const [attempt] = job.attempts
    expect(attempt.failReason).toBe('memory')
    expect(attempt.peakRssKb).toBeGreaterThan(100 * 1024)
    const wallMs = Date.parse(attempt.endedAt as string) - Date.parse(attempt.startedAt as string)
    expect(wallMs).toBeLessThan(30_000) // killed, not left to its 10-minute sleep
    const details = await ok(alpha.home, ['show', id])
    expect(details).toMatch(/PEAK RSS +CPU +WALL/)
    expect(details).toMatch(/ memory +\d+(\.\d)?M +\S+ +\S+$/m)
  })

  it('rejects a malformed --mem with a usage error', async () => {
    for (const bad of ['lots', '10X', '512K']) {
      const result = await meshq(alpha.home, ['sub', '--mem', bad, '--', 'true'])
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(/bad --mem/)
    }
  })
})

describe('--out', () => {
  it('also writes both streams to FILE, relative to the cwd, on the node that ran the job', async () => {
    const id = await sub('--tag', 'beta', '--out', 'logs/job.log', '--', 'sh', '-c', 'echo to-stdout; echo to-stderr >&2')
    const job = await settled(id, 'done')
    expect(job.out).toBe('logs/job.log')
    const lines = (await readFile(join(work.dir, 'logs', 'job.log'), 'utf8')).trim().split('\n').sort()
    expect(lines).toEqual(['to-stderr', 'to-stdout'])
  })
})
