/**
 * A job's whole process tree dies with it (issue 16, finding 11): also the processes that left its
 * process group and session (`setsid`), on kill, timeout, fencing and the node's death. Each job has a
 * cgroup of its own; this needs root (or a delegated cgroup), as in CI. Without one the executor says
 * so and contains the process group only.
 */
import { execFile } from 'node:child_process'
import { chown, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, describe, expect, test } from 'vitest'
import type { RunRequest } from '../src/exec/executor.js'
import { alive, ESCAPING_JOB, executorScratch, escapedPid, killIfAlive, startFixtureNode, waitForGone } from './exec-fixture.js'
import { waitFor } from './helpers.js'

const isRoot = process.getuid?.() === 0
const NOBODY = 65534
const execFileAsync = promisify(execFile)
const { scratch, started, later, cleanUp } = executorScratch('meshq-contain-', 1000)
afterEach(cleanUp)

function request (dir: string, extra: Partial<RunRequest> = {}): RunRequest {
  return { jobId: 'job1', epoch: 1, cmd: ESCAPING_JOB, cwd: dir, env: {}, ...extra }
}

/** The escaped process the job wrote to `dir/pidfile` (see `escapedPid`), killed after the test whatever happens. */
async function escapedFrom (dir: string): Promise<number> {
  const pid = await escapedPid(join(dir, 'pidfile'), pid => { later(async () => { await killIfAlive(pid) }) })
  return pid
}

async function cgroupOf (pid: number): Promise<string> {
  const text = await readFile(`/proc/${pid}/cgroup`, 'utf8')
  return text.split('\n').find(line => line.startsWith('0::'))?.slice(3) ?? ''
}

/** Runs one job as `nobody` with the executor from the sources, and prints what it reports. */
function unprivilegedScript (home: string): string {
  return `
import { registerHooks } from 'node:module'
registerHooks({ resolve (s, c, n) { try { return n(s, c) } catch (e) { if (s.startsWith('.') && s.endsWith('.js')) return n(s.slice(0, -3) + '.ts', c); throw e } } })
const { executor } = await import(${JSON.stringify(new URL('../src/exec/executor.ts', import.meta.url).href)})
const exec = executor({ home: ${JSON.stringify(home)} })
await exec.start()
const handle = await exec.run({ jobId: 'j', epoch: 1, cmd: ['id', '-u'], cwd: ${JSON.stringify(home)}, env: {} })
const result = await handle.result
await exec.stop()
console.log(JSON.stringify({ containment: exec.containment(), uncontained: handle.uncontained, result }))
`
}

describe.runIf(isRoot)('a job\'s whole tree, in its cgroup', () => {
  test('a kill kills what left the job\'s process group, as killed by SIGTERM as before', async () => {
    const { exec, home: dir } = await started()
    const handle = await exec.run(request(dir))
    const escaped = await escapedFrom(dir)
    handle.kill('killed')
    expect(await handle.result).toMatchObject({ failReason: 'killed', signal: 'SIGTERM', exitCode: undefined })
    await waitForGone(escaped)
  })

  test('a fence (lease lost) kills what left the group', async () => {
    const { exec, home: dir } = await started()
    const handle = await exec.run(request(dir))
    const escaped = await escapedFrom(dir)
    handle.kill('lost')
    expect((await handle.result).failReason).toBe('lost')
    await waitForGone(escaped)
  })

  test('a timeout kills what left the group', async () => {
    const { exec, home: dir } = await started()
    const handle = await exec.run(request(dir, { timeoutMs: 3000 }))
    const escaped = await escapedFrom(dir)
    expect(await handle.result).toMatchObject({ failReason: 'timed-out', signal: 'SIGTERM' })
    await waitForGone(escaped)
  })

  test('what a job leaves behind when it exits is killed, and its exit code stands', async () => {
    const { exec, home: dir } = await started()
    // the pidfile is written from the new session: the leader exits only once its child has left the group
    const script = 'setsid sh -c \'echo $$ > pidfile; exec sleep 300\' & until [ -s pidfile ]; do sleep 0.01; done; exit 3'
    const handle = await exec.run(request(dir, { cmd: ['sh', '-c', script] }))
    expect(await handle.result).toMatchObject({ exitCode: 3, failReason: 'non-zero-exit', signal: undefined })
    const pid = Number((await readFile(join(dir, 'pidfile'), 'utf8')).trim())
    later(async () => { await killIfAlive(pid) })
    await waitForGone(pid)
  })

  test('the job is born in its own cgroup under the node\'s, which the node leaves again; both go when done', async () => {
    const before = await cgroupOf(process.pid)
    const { exec, home: dir } = await started()
    const containment = exec.containment()
    expect(containment).toEqual({ cgroup: expect.stringMatching(/\/meshq-\d+-[0-9a-f]+$/) })
    const nodeDir = 'cgroup' in containment ? containment.cgroup : ''
    const handle = await exec.run(request(dir))
    expect(handle.uncontained).toBeUndefined()
    const escaped = await escapedFrom(dir)
    const jobCgroup = await cgroupOf(escaped)
    expect(jobCgroup).toBe(await cgroupOf(handle.pid))
    expect(nodeDir.endsWith(jobCgroup.slice(0, jobCgroup.lastIndexOf('/')))).toBe(true)
    expect(await cgroupOf(process.pid)).toBe(before)
    handle.kill('killed')
    await handle.result
    await waitFor(async () => await readFile(join(nodeDir, jobCgroup.slice(jobCgroup.lastIndexOf('/')), 'cgroup.procs')).then(() => false, () => true), { what: 'the job\'s cgroup to be removed' })
    await exec.stop()
    await waitFor(async () => await readFile(join(nodeDir, 'cgroup.procs')).then(() => false, () => true), { what: 'the node\'s cgroup to be removed' })
  })

  test('the job sees the same environment, cwd, MESHQ_* variables and process group as without a cgroup', async () => {
    const { exec, home: dir } = await started()
    const script = 'echo "$MESHQ_JOB_ID $MESHQ_ATTEMPT $CUSTOM"; pwd; ps -o pgid= -p $$; echo $$'
    const handle = await exec.run(request(dir, { cmd: ['sh', '-c', script], jobId: 'j-env', epoch: 7, env: { CUSTOM: 'x y' } }))
    expect(await handle.result).toMatchObject({ exitCode: 0, failReason: undefined })
    const [vars, cwd, pgid, pid] = (await readFile(handle.outputPaths.stdout, 'utf8')).split('\n')
    expect([vars, cwd, Number(pgid), Number(pid)]).toEqual(['j-env 7 x y', dir, handle.pid, handle.pid])
  })
})

describe.runIf(isRoot)('the watchdog kills a job\'s whole tree', () => {
  async function fixture (fenceMs?: number): Promise<{ node: Awaited<ReturnType<typeof startFixtureNode>>, escaped: number }> {
    const dir = await scratch()
    const node = await startFixtureNode(dir, { cmd: ESCAPING_JOB, fenceMs })
    later(async () => {
      node.node.kill('SIGKILL')
      await node.exited
    })
    expect(node.cgroup).toBeDefined()
    return { node, escaped: await escapedFrom(dir) }
  }

  test('when the node dies by SIGKILL, and removes the node\'s cgroup', async () => {
    const { node, escaped } = await fixture()
    node.node.kill('SIGKILL')
    await node.exited
    await waitForGone(escaped)
    await waitFor(async () => await readFile(join(node.cgroup ?? '', 'cgroup.procs')).then(() => false, () => true), { what: 'the node\'s cgroup to be removed' })
  })

  test('when the node is stalled past the fence (SIGSTOP)', async () => {
    const { node, escaped } = await fixture(1000)
    node.node.kill('SIGSTOP')
    later(async () => { node.node.kill('SIGCONT') })
    await waitForGone(escaped)
  })
})

describe('without a cgroup', () => {
  test.runIf(isRoot)('an unprivileged user without a delegated cgroup gets process groups, and the reason', async () => {
    const home = await scratch()
    await chown(home, NOBODY, NOBODY)
    const { stdout } = await execFileAsync('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', '--', process.execPath, '--input-type=module', '-e', unprivilegedScript(home)])
    expect(JSON.parse(stdout)).toEqual({
      containment: { uncontained: expect.stringMatching(/^cannot make a cgroup: EACCES/) },
      uncontained: true,
      result: expect.objectContaining({ exitCode: 0, tail: String(NOBODY) })
    })
  })

  test('the executor says why, marks each run uncontained and still kills the process group', async () => {
    const { exec, home: dir } = await started({ cgroups: false })
    expect(exec.containment()).toEqual({ uncontained: 'cgroups are turned off' })
    const handle = await exec.run(request(dir))
    expect(handle.uncontained).toBe(true)
    const escaped = await escapedFrom(dir)
    handle.kill('killed')
    expect(await handle.result).toMatchObject({ failReason: 'killed', signal: 'SIGTERM' })
    // the limit this mode has, as docs/guarantees.md states it
    expect(await alive(escaped)).toBe(true)
  })
})
