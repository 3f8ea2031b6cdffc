import { existsSync, readFileSync } from 'node:fs'
import { chmod, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import { executor, killLeftover, type RunRequest } from '../src/exec/executor.js'
import { ExecutorNotRunningError } from '../src/exec/errors.js'
import { executorScratch, startFixtureNode, type FixtureMode } from './exec-fixture.js'
import { waitFor } from './helpers.js'

const { scratch, started, later, cleanUp } = executorScratch('meshq-exec-', 2000)
afterEach(cleanUp)

function request (cmd: string[], extra: Partial<RunRequest> = {}): RunRequest {
  return { jobId: 'job1', epoch: 1, cmd, cwd: '/', env: {}, ...extra }
}

/** Live (non-zombie) processes of group `pgid`, found by scanning /proc. */
async function groupMembers (pgid: number): Promise<number[]> {
  const pids = (await readdir('/proc')).filter(name => /^\d+$/.test(name))
  const stats = await Promise.all(pids.map(async pid => await readFile(`/proc/${pid}/stat`, 'latin1').catch(() => '')))
  return pids.filter((_, i) => {
    const [state, , pgrp] = stats[i].slice(stats[i].lastIndexOf(')') + 2).split(' ')
    return Number(pgrp) === pgid && state !== 'Z'
  }).map(Number)
}

async function waitForGroupSize (pgid: number, size: number): Promise<void> {
  await waitFor(async () => (await groupMembers(pgid)).length >= size, { timeout: 20_000, what: `${size} processes in group ${pgid}` })
}

/** Killed processes may take a moment to be gone; the deadline is generous for a loaded machine. */
async function waitForGroupGone (pgid: number, timeout = 10_000): Promise<void> {
  await waitFor(async () => (await groupMembers(pgid)).length === 0, { timeout, interval: 20, what: `group ${pgid} to die` })
}

/** Which of `paths` this process has open. */
async function openedBySelf (paths: string[]): Promise<string[]> {
  const fds = await readdir('/proc/self/fd')
  const targets = await Promise.all(fds.map(async fd => await readlink(`/proc/self/fd/${fd}`).catch(() => '')))
  return paths.filter(path => targets.includes(path))
}

/** The parent pid of a live process. */
function parentOf (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
}

function numbers (count: number): string {
  return Array.from({ length: count }, (_, i) => `${i + 1}\n`).join('')
}

describe('executor', () => {
  test('captures output, tail and exit code 0', async () => {
    const { exec, home } = await started()
    // stderr is written once the executor has seen all of stdout, so the tail's order is known.
    const script = 'seq 1 20; until grep -q "^20$" "$STDOUT"; do :; done; echo oops >&2'
    const env = { STDOUT: join(home, 'output/job1/1.stdout') }
    const handle = await exec.run(request(['sh', '-c', script], { env }))
    const result = await handle.result
    expect(result).toMatchObject({ exitCode: 0, failReason: undefined, stdoutBytes: numbers(20).length, stderrBytes: 5, truncated: false })
    expect(result.tail).toBe([...numbers(20).trim().split('\n').slice(-9), 'oops'].join('\n'))
    expect(result.endedAt).toBeGreaterThanOrEqual(result.startedAt)
    // stamped by the spawner at the spawn, as the end is: the record of the start carries the same time
    expect(handle.startedAt).toBe(result.startedAt)
    expect(await readFile(handle.outputPaths.stdout, 'utf8')).toBe(numbers(20))
    expect(await readFile(handle.outputPaths.stderr, 'utf8')).toBe('oops\n')
    expect(handle.outputPaths.stdout).toMatch(/\/output\/job1\/1\.stdout$/)
    expect(handle.pid).toBeGreaterThan(1)
    expect(handle.startTime).toMatch(/^\d+$/)
    expect(exec.running()).toBe(0)
  })

  test('keeps the tail within 2 KB', async () => {
    const { exec } = await started()
    const result = await (await exec.run(request(['sh', '-c', 'head -c 5000 /dev/zero | tr "\\0" y']))).result
    expect(result.tail).toBe('y'.repeat(2048))
  })

  test('reports a non-zero exit', async () => {
    const { exec } = await started()
    const result = await (await exec.run(request(['sh', '-c', 'exit 7']))).result
    expect(result).toMatchObject({ exitCode: 7, failReason: 'non-zero-exit' })
  })

  test('reports a signal it did not send', async () => {
    const { exec } = await started()
    const result = await (await exec.run(request(['sh', '-c', 'kill -USR1 $$']))).result
    expect(result).toMatchObject({ signal: 'SIGUSR1', failReason: 'signaled' })
  })

  test('reports a command that does not exist', async () => {
    const { exec } = await started()
    const handle = await exec.run(request(['meshq-no-such-command']))
    expect(handle.pid).toBe(0)
    const result = await handle.result
    expect(result).toMatchObject({ failReason: 'command-not-found', stdoutBytes: 0, stderrBytes: 0 })
    expect(result.tail).toContain('meshq-no-such-command')
  })

  test('reports a file that is not executable', async () => {
    const dir = await scratch()
    const script = join(dir, 'script.sh')
    await writeFile(script, '#!/bin/sh\necho hi\n')
    await chmod(script, 0o644)
    const { exec } = await started()
    const result = await (await exec.run(request([script]))).result
    expect(result.failReason).toBe('not-executable')
  })

  test('reports a command the OS cannot take (a NUL byte) as spawn-error, with its output files closed', async () => {
    const { exec } = await started()
    const handle = await exec.run(request(['echo', 'a\u0000b']))
    expect(handle.pid).toBe(0)
    const result = await handle.result
    expect(result).toMatchObject({ failReason: 'spawn-error', stdoutBytes: 0, stderrBytes: 0 })
    expect(result.tail).toContain('null bytes')
    expect(await openedBySelf(Object.values(handle.outputPaths))).toEqual([])
  })

  test('reports a missing working directory', async () => {
    const dir = await scratch()
    const { exec } = await started()
    const result = await (await exec.run(request(['true'], { cwd: join(dir, 'gone') }))).result
    expect(result.failReason).toBe('cwd-missing')
  })

  test('runs in cwd with the node env, the job env and MESHQ_JOB_ID / MESHQ_ATTEMPT', async () => {
    const dir = await scratch()
    const { exec } = await started()
    const script = 'echo "$MESHQ_JOB_ID $MESHQ_ATTEMPT $CUSTOM $HOME"; pwd'
    const handle = await exec.run(request(['sh', '-c', script], { jobId: 'j-env', epoch: 3, cwd: dir, env: { CUSTOM: 'x y' } }))
    expect((await handle.result).exitCode).toBe(0)
    expect(await readFile(handle.outputPaths.stdout, 'utf8')).toBe(`j-env 3 x y ${process.env.HOME}\n${dir}\n`)
  })

  test('a timeout kills the whole group', async () => {
    const { exec } = await started()
    const handle = await exec.run(request(['sh', '-c', 'sleep 300 & sleep 300'], { timeoutMs: 300 }))
    const result = await handle.result
    expect(result).toMatchObject({ failReason: 'timed-out', signal: 'SIGTERM' })
    await waitForGroupGone(handle.pid)
  })

  test('kill leaves no process of the group', async () => {
    const { exec } = await started()
    const handle = await exec.run(request(['sh', '-c', 'sleep 300 & sleep 300']))
    await waitForGroupSize(handle.pid, 3)
    expect(exec.running()).toBe(1)
    handle.kill('killed')
    expect(await handle.result).toMatchObject({ failReason: 'killed', signal: 'SIGTERM' })
    await waitForGroupGone(handle.pid)
    expect(exec.running()).toBe(0)
  })

  test('kill with reason lost is reported as lost', async () => {
    const { exec } = await started()
    const handle = await exec.run(request(['sleep', '300']))
    handle.kill('lost')
    expect((await handle.result).failReason).toBe('lost')
  })

  test('a job that finishes with exit 0 after a fence asked it to stop is a success: a finished attempt counts', async () => {
    const { exec, home } = await started()
    const go = join(home, 'go')
    // it ignores SIGTERM and ends on its own, as a job that had just finished when its node fenced it
    const script = `trap "" TERM; echo ready; while [ ! -e ${go} ]; do sleep 0.02; done; exit 0`
    const lost = await exec.run(request(['sh', '-c', script]))
    await waitFor(async () => (await readFile(lost.outputPaths.stdout, 'utf8')) === 'ready\n', { what: 'the trap' })
    lost.kill('lost')
    await writeFile(go, '')
    expect(await lost.result).toMatchObject({ exitCode: 0, failReason: undefined })
    // a kill people asked for stays a kill, however the job ends
    await rm(go)
    const killed = await exec.run(request(['sh', '-c', script], { jobId: 'job2' }))
    await waitFor(async () => (await readFile(killed.outputPaths.stdout, 'utf8')) === 'ready\n', { what: 'the trap' })
    killed.kill('killed')
    await writeFile(go, '')
    expect((await killed.result).failReason).toBe('killed')
  })

  test('a job ignoring SIGTERM dies by SIGKILL after the grace period', async () => {
    const graceMs = 500
    const { exec } = await started({ killGraceMs: graceMs })
    const handle = await exec.run(request(['sh', '-c', 'trap "" TERM; echo ready; sleep 300']))
    await waitFor(async () => (await readFile(handle.outputPaths.stdout, 'utf8')) === 'ready\n', { what: 'the trap' })
    const killedAt = Date.now()
    handle.kill('killed')
    const result = await handle.result
    expect(result).toMatchObject({ failReason: 'killed', signal: 'SIGKILL' })
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(graceMs - 50)
    await waitForGroupGone(handle.pid)
  })

  test('processes left in the group when the leader exits are killed', async () => {
    const { exec } = await started()
    const handle = await exec.run(request(['sh', '-c', 'sleep 300 & echo started']))
    expect(await handle.result).toMatchObject({ exitCode: 0, tail: 'started' })
    await waitForGroupGone(handle.pid)
  })

  test('caps output: head, marker and tail, with exact byte counts', async () => {
    const cap = 1024 * 1024
    const { exec } = await started({ maxStreamBytes: cap })
    const count = 500_000
    const expected = numbers(count)
    const handle = await exec.run(request(['seq', '1', String(count)]))
    const result = await handle.result
    expect(result).toMatchObject({ exitCode: 0, truncated: true, stdoutBytes: expected.length })
    expect(expected.length).toBeGreaterThan(3 * cap)
    const marker = `\n[meshq: ${expected.length - cap} bytes omitted]\n`
    const file = await readFile(handle.outputPaths.stdout, 'latin1')
    expect(file.length).toBe(cap + marker.length)
    expect(file.slice(0, cap / 2)).toBe(expected.slice(0, cap / 2))
    expect(file.slice(cap / 2, cap / 2 + marker.length)).toBe(marker)
    expect(file.slice(cap / 2 + marker.length)).toBe(expected.slice(-cap / 2))
    expect(result.tail).toBe(numbers(count).trim().split('\n').slice(-10).join('\n'))
    expect((await readdir(join(handle.outputPaths.stdout, '..'))).sort()).toEqual(['1.stderr', '1.stdout'])
  })

  test('output past half the cap but within it is kept whole', async () => {
    const cap = 1024 * 1024
    const { exec } = await started({ maxStreamBytes: cap })
    const expected = numbers(100_000)
    expect(expected.length).toBeGreaterThan(cap / 2)
    const handle = await exec.run(request(['seq', '1', '100000']))
    expect(await handle.result).toMatchObject({ truncated: false, stdoutBytes: expected.length })
    expect(await readFile(handle.outputPaths.stdout, 'latin1')).toBe(expected)
  })

  test('also appends all output to `out`, relative to cwd', async () => {
    const dir = await scratch()
    await writeFile(join(dir, 'all.log'), 'before\n')
    const { exec } = await started()
    const script = 'echo one; echo two >&2; echo three'
    const result = await (await exec.run(request(['sh', '-c', script], { cwd: dir, out: 'all.log' }))).result
    expect(result.exitCode).toBe(0)
    const log = await readFile(join(dir, 'all.log'), 'utf8')
    expect(log.startsWith('before\n')).toBe(true)
    expect(log.split('\n').sort()).toEqual(['', 'before', 'one', 'three', 'two'])
    expect(log.indexOf('one')).toBeLessThan(log.indexOf('three'))
  })

  test('samples memory and CPU of a running job', async () => {
    const dir = await scratch()
    const { exec } = await started({ sampleIntervalMs: 20 })
    const handle = await exec.run(request(['sh', '-c', 'while [ ! -e stop ]; do :; done'], { cwd: dir }))
    await waitFor(async () => {
      const fields = (await readFile(`/proc/${handle.pid}/stat`, 'latin1')).split(') ')[1].split(' ')
      return Number(fields[11]) + Number(fields[12]) >= 30 // 300 ms of CPU
    }, { what: 'CPU use' })
    await writeFile(join(dir, 'stop'), '')
    const result = await handle.result
    expect(result.exitCode).toBe(0)
    expect(result.peakRssKb).toBeGreaterThan(0)
    expect(result.cpuMs).toBeGreaterThan(0)
  })

  test('runs many short jobs', async () => {
    const { exec } = await started()
    for (let i = 0; i < 20; i++) {
      const results = await Promise.all([0, 1].map(async n => await (await exec.run(request(['true'], { jobId: `j${i}`, epoch: n + 1 }))).result))
      expect(results.map(result => result.failReason)).toEqual([undefined, undefined])
    }
    expect(exec.running()).toBe(0)
  })

  test('jobs run under the spawner, not the node; when the spawner dies its running job is lost and killed, and a new spawner runs the next', async () => {
    const { exec } = await started()
    const handle = await exec.run(request(['sh', '-c', 'sleep 300 & sleep 300']))
    await waitForGroupSize(handle.pid, 3)
    const spawner = parentOf(handle.pid)
    expect(spawner).not.toBe(process.pid)
    expect(await readFile(`/proc/${spawner}/cmdline`, 'latin1')).toContain('spawner/main.js')
    process.kill(spawner, 'SIGKILL')
    expect(await handle.result).toMatchObject({ failReason: 'lost', signal: 'SIGKILL' })
    await waitForGroupGone(handle.pid)
    const next = await exec.run(request(['sh', '-c', 'echo $PPID'], { jobId: 'job2' }))
    expect(await next.result).toMatchObject({ exitCode: 0, failReason: undefined })
    const newSpawner = Number((await readFile(next.outputPaths.stdout, 'utf8')).trim())
    expect(newSpawner).not.toBe(spawner)
    expect(parentOf(newSpawner)).toBe(process.pid)
  })

  test('stop kills running jobs as lost, then refuses to run', async () => {
    const home = await scratch()
    const exec = executor({ home, killGraceMs: 2000 })
    await expect(exec.run(request(['true']))).rejects.toThrow(ExecutorNotRunningError)
    await exec.start()
    const handle = await exec.run(request(['sh', '-c', 'sleep 300 & sleep 300']))
    await waitForGroupSize(handle.pid, 3)
    await exec.stop()
    expect((await handle.result).failReason).toBe('lost')
    await waitForGroupGone(handle.pid)
    expect(exec.running()).toBe(0)
    await expect(exec.run(request(['true']))).rejects.toThrow(ExecutorNotRunningError)
  })

  test('killLeftover kills a live group only if the start time matches', async () => {
    const { exec } = await started()
    const handle = await exec.run(request(['sh', '-c', 'sleep 300 & sleep 300']))
    await waitForGroupSize(handle.pid, 3)
    expect(killLeftover(handle.pid, String(Number(handle.startTime) + 1))).toBe(false)
    expect(await groupMembers(handle.pid)).toHaveLength(3)
    expect(killLeftover(handle.pid, handle.startTime)).toBe(true)
    expect(await handle.result).toMatchObject({ signal: 'SIGKILL', failReason: 'signaled' })
    await waitForGroupGone(handle.pid)
    expect(killLeftover(handle.pid, handle.startTime)).toBe(false)
    expect(killLeftover(0, '')).toBe(false)
  })
})

/** Every MESHQ_* variable a hook sees, one `K=V` per line, written to `file`. */
const dumpHookEnv = (file: string): string => `env | grep '^MESHQ_' | sort > ${file}`

async function envFile (file: string): Promise<Record<string, string>> {
  const text = await readFile(file, 'utf8')
  return Object.fromEntries(text.trim().split('\n').map(line => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]))
}

/** MESHQ_* variables of this test run itself (e.g. MESHQ_SLOW_TESTS in CI): hooks inherit them too. */
const inheritedMeshqVars = (): Record<string, string> =>
  Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith('MESHQ_') && e[1] !== undefined))

const exists = async (path: string): Promise<boolean> => await stat(path).then(() => true, () => false)

describe('hooks, private directories and memory limits', () => {
  test('on-success and on-exit run after a success, with the attempt in their environment', async () => {
    const dir = await scratch()
    const { exec, home } = await started()
    const handle = await exec.run(request(['sh', '-c', 'echo out'], {
      jobId: 'j-hook', epoch: 2, cwd: dir, node: 'peer-1', onSuccess: dumpHookEnv('success'), onFailure: 'touch failure', onExit: 'pwd > exit'
    }))
    expect((await handle.result).exitCode).toBe(0)
    await handle.wrapUp('done')
    expect(await envFile(join(dir, 'success'))).toEqual({
      ...inheritedMeshqVars(),
      MESHQ_ATTEMPT: '2',
      MESHQ_EXIT_CODE: '0',
      MESHQ_FAIL_REASON: '',
      MESHQ_HOME: home,
      MESHQ_JOB_ID: 'j-hook',
      MESHQ_JOB_STATE: 'done',
      MESHQ_NODE: 'peer-1',
      MESHQ_SIGNAL: '',
      MESHQ_STDERR: join(home, 'output/j-hook/2.stderr'),
      MESHQ_STDOUT: join(home, 'output/j-hook/2.stdout')
    })
    expect(await readFile(join(dir, 'exit'), 'utf8')).toBe(`${dir}\n`)
    expect(await exists(join(dir, 'failure'))).toBe(false)
  })

  test('on-failure runs only when the job failed for good; on-exit after every attempt', async () => {
    const dir = await scratch()
    const { exec } = await started()
    const hooks = { cwd: dir, onSuccess: 'touch success', onFailure: dumpHookEnv('failure'), onExit: 'echo $MESHQ_ATTEMPT >> exits' }
    const retried = await exec.run(request(['sh', '-c', 'exit 3'], { ...hooks, epoch: 1 }))
    await retried.wrapUp('pending')
    expect(await exists(join(dir, 'failure'))).toBe(false)
    const last = await exec.run(request(['sh', '-c', 'exit 3'], { ...hooks, epoch: 2 }))
    await last.wrapUp('failed')
    expect(await envFile(join(dir, 'failure'))).toMatchObject({ MESHQ_ATTEMPT: '2', MESHQ_EXIT_CODE: '3', MESHQ_FAIL_REASON: 'non-zero-exit', MESHQ_JOB_STATE: 'failed' })
    expect(await readFile(join(dir, 'exits'), 'utf8')).toBe('1\n2\n')
    expect(await exists(join(dir, 'success'))).toBe(false)
  })

  test('hooks run for a job that could not start, outside its missing cwd', async () => {
    const dir = await scratch()
    const { exec } = await started()
    const handle = await exec.run(request(['true'], { cwd: join(dir, 'gone'), onFailure: `echo "$MESHQ_FAIL_REASON $(pwd)" > ${join(dir, 'why')}` }))
    await handle.wrapUp('failed')
    expect(await readFile(join(dir, 'why'), 'utf8')).toBe('cwd-missing /\n')
  })

  test('a failing or hanging hook is logged next to the output and killed at its timeout', async () => {
    const dir = await scratch()
    const { exec, home } = await started({ hookTimeoutMs: 500, killGraceMs: 500 })
    const handle = await exec.run(request(['true'], { cwd: dir, onSuccess: 'echo said; exit 4', onExit: 'sleep 300 & echo $$ > pid; wait' }))
    const hooksStarted = Date.now()
    await handle.wrapUp('done')
    expect(Date.now() - hooksStarted).toBeLessThan(10_000)
    const hookLog = await readFile(join(home, 'output/job1/1.hooks'), 'utf8')
    expect(hookLog).toBe('said\n[meshq: on-success hook exited 4]\n[meshq: on-exit hook timed out after 500 ms]\n')
    await waitForGroupGone(Number(await readFile(join(dir, 'pid'), 'utf8')))
  })

  test('stop waits for the hooks already running; a stopped executor runs none', async () => {
    const dir = await scratch()
    const home = await scratch()
    const exec = executor({ home, killGraceMs: 2000 })
    await exec.start()
    const first = await exec.run(request(['true'], { cwd: dir, onExit: 'sleep 0.5; touch first' }))
    const second = await exec.run(request(['true'], { epoch: 2, cwd: dir, onExit: 'touch second' }))
    await Promise.all([first.result, second.result])
    const hooking = first.wrapUp('done')
    await exec.stop()
    expect(await exists(join(dir, 'first'))).toBe(true)
    await hooking
    await second.wrapUp('done')
    expect(await exists(join(dir, 'second'))).toBe(false)
  })

  test('--tmpdir: the job runs in a fresh private directory that is also TMPDIR, removed after a success', async () => {
    const dir = await scratch()
    const { exec } = await started()
    const handle = await exec.run(request(['sh', '-c', 'pwd; echo "$TMPDIR"; touch made'], { jobId: 'j-tmp', epoch: 4, cwd: dir, tmpdir: true, out: 'all.log', onExit: 'ls > ../listing' }))
    expect((await handle.result).exitCode).toBe(0)
    const [privateDir, tmp] = (await readFile(handle.outputPaths.stdout, 'utf8')).split('\n')
    expect(privateDir).toMatch(new RegExp(`^${dir}/\\.meshq-j-tmp-4-\\w{6}$`)) // not a name another user can plant first
    expect(tmp).toBe(privateDir)
    expect((await stat(privateDir)).mode & 0o777).toBe(0o700)
    await handle.wrapUp('done')
    expect(await exists(privateDir)).toBe(false)
    expect(await readFile(join(dir, 'listing'), 'utf8')).toBe('made\n') // the hook ran in it, before its removal
    expect(await exists(join(dir, 'all.log'))).toBe(true) // --out stays relative to the job's cwd
  })

  test('--tmpdir: a relative program path still names the file in the cwd', async () => {
    const dir = await scratch()
    await writeFile(join(dir, 'run.sh'), '#!/bin/sh\npwd\n')
    await chmod(join(dir, 'run.sh'), 0o755)
    const { exec } = await started()
    const handle = await exec.run(request(['./run.sh'], { cwd: dir, tmpdir: true }))
    expect(await handle.result).toMatchObject({ exitCode: 0, tail: expect.stringMatching(new RegExp(`^${dir}/\\.meshq-job1-1-\\w{6}$`)) })
  })

  test('--tmpdir keeps a failed attempt\'s directory, unless --cleanup; --keep-tmpdir keeps every one', async () => {
    const dir = await scratch()
    const { exec } = await started()
    const outcomes: Array<[string, Partial<RunRequest>, boolean]> = [
      ['exit 1', {}, true],
      ['exit 1', { cleanup: true }, false],
      ['true', { keepTmpdir: true }, true]
    ]
    for (const [i, [script, options, kept]] of outcomes.entries()) {
      const handle = await exec.run(request(['sh', '-c', script], { jobId: `j${i}`, cwd: dir, tmpdir: true, ...options }))
      await handle.result
      await handle.wrapUp(script === 'true' ? 'done' : 'failed')
      expect((await readdir(dir)).some(name => name.startsWith(`.meshq-j${i}-1-`))).toBe(kept)
    }
  })

  test('--mem kills a job whose group uses more memory, with fail reason memory', async () => {
    const { exec } = await started()
    // two processes of 60 MB each: only their sum exceeds the limit
    const allocate = `${JSON.stringify(process.execPath)} -e 'const b = Buffer.alloc(60 * 2 ** 20, 1); setTimeout(() => {}, 300000)'`
    const handle = await exec.run(request(['sh', '-c', `${allocate} & ${allocate}; wait`], { memBytes: 100 * 2 ** 20 }))
    const result = await handle.result
    expect(result.failReason).toBe('memory')
    expect(result.peakRssKb).toBeGreaterThan(100 * 1024)
    await waitForGroupGone(handle.pid)
  })

  test('--mem leaves a job within its limit alone', async () => {
    const { exec } = await started()
    const result = await (await exec.run(request(['sh', '-c', 'sleep 1'], { memBytes: 100 * 2 ** 20 }))).result
    expect(result).toMatchObject({ exitCode: 0, failReason: undefined })
  })
})

describe('orphan guard', () => {
  /** Runs the fixture node, SIGKILLs it once its job runs, and checks the job's group and the node's spawner die within 5 s. */
  async function killNodeAndCheckJobDies (mode: FixtureMode): Promise<void> {
    const dir = await scratch()
    const { node, exited, pgid } = await startFixtureNode(dir, { cmd: ['sh', '-c', 'sleep 300 & sleep 300'] }, mode)
    later(async () => { node.kill('SIGKILL') })
    later(async () => { await groupMembers(pgid).then(members => members.length > 0 && process.kill(-pgid, 'SIGKILL')) })
    await waitForGroupSize(pgid, 3)
    const spawner = parentOf(pgid)
    expect(spawner).not.toBe(node.pid)

    node.kill('SIGKILL')
    await exited
    const killedAt = Date.now()
    await waitForGroupGone(pgid, 5000)
    await waitFor(() => !existsSync(`/proc/${spawner}`), { timeout: 5000, interval: 20, what: 'the spawner to exit with its node' })
    expect(Date.now() - killedAt).toBeLessThan(5000)
    expect((await stat(join(dir, 'output/orphan/1.stdout'))).isFile()).toBe(true)
  }

  test('the jobs of a node killed with SIGKILL die within 5 s', async () => {
    await killNodeAndCheckJobDies('plain')
  })

  test('a watchdog that dies is replaced and keeps guarding the running jobs', async () => {
    await killNodeAndCheckJobDies('kill-watchdog-first')
  })
})
