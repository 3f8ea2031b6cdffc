/**
 * The shipped Snakemake profile (contrib/snakemake) on a 2-node mesh. Its three scripts are checked on
 * their own; then Snakemake 7 drives the mesh through the profile: a fan-out and a fan-in run once each, a
 * failing rule fails the workflow, and SIGINT to Snakemake kills the running meshq jobs. The Snakemake
 * part is skipped when `snakemake` (Debian's package, 7.x) is not on the PATH.
 */
import { execFile, spawn, spawnSync } from 'node:child_process'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, json, ok, startCluster } from './cluster.js'
import type { CliResult, TestNode } from './cluster.js'
import { tempDir, waitFor } from './helpers.js'
import type { JobView } from '../src/types.js'

const PROFILE = fileURLToPath(new URL('../contrib/snakemake', import.meta.url))
const FAN_OUT = 20

const version = spawnSync('snakemake', ['--version'], { encoding: 'utf8' })
const snakemake = version.status === 0 ? version.stdout.trim() : undefined
const skip = snakemake === undefined
  ? 'snakemake is not on the PATH (apt-get install snakemake)'
  : Number(snakemake.split('.')[0]) !== 7 ? `the profile is for Snakemake 7, and this is ${snakemake}` : undefined
if (skip !== undefined) console.warn(`e2e-snakemake: the Snakemake workflows are skipped: ${skip}`)
const noPython = spawnSync('python3', ['--version']).status !== 0
if (noPython) console.warn('e2e-snakemake: meshq-submit.py is not checked: no python3 on the PATH')

/**
 * The directory of the Python that runs Snakemake (from the shebang of `snakemake`), first on the PATH
 * so that the submit script runs on it too: a pyenv shim in its place costs seconds a job on a loaded
 * machine, and Snakemake submits one job at a time.
 */
function snakemakePythonDir (): string {
  const which = spawnSync('sh', ['-c', 'head -n 1 "$(command -v snakemake)"'], { encoding: 'utf8' }).stdout
  const python = /^#!\s*(\/\S+python\S*)/.exec(which)?.[1]
  return python === undefined ? '' : `${dirname(python)}:`
}

let nodes: TestNode[] = []
let work: { dir: string, cleanup: () => Promise<void> }
/** A directory with a `meshq` that runs this checkout's build, for the profile's scripts. */
let bin: string

beforeAll(async () => {
  nodes = await startCluster(2, ['--slots', '4'])
  work = await tempDir('meshq-snakemake-')
  bin = join(work.dir, 'bin')
  await mkdir(bin)
  await writeFile(join(bin, 'meshq'), `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`)
  await chmod(join(bin, 'meshq'), 0o755)
}, 120_000)
afterAll(async () => {
  for (const n of nodes) await n.cleanup()
  await work?.cleanup()
})

/** Runs one of the profile's scripts as Snakemake would, in `cwd`, against the first node. */
async function script (name: string, args: string[], options: { cwd: string, home?: string }): Promise<CliResult> {
  return await new Promise(resolve => {
    execFile(join(PROFILE, name), args, {
      cwd: options.cwd,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, MESHQ_HOME: options.home ?? nodes[0].home }
    }, (err, stdout, stderr) => resolve({ code: err == null ? 0 : Number((err as { code?: unknown }).code ?? 1), stdout, stderr }))
  })
}

async function newDir (name: string): Promise<string> {
  const dir = join(work.dir, name)
  await mkdir(dir)
  return dir
}

async function submitIds (jobs: object[]): Promise<string[]> {
  return (await ok(nodes[0].home, ['sub', '--batch'], { input: jobs.map(j => JSON.stringify(j)).join('\n') })).trim().split('\n')
}

describe('the profile\'s scripts', () => {
  it.skipIf(noPython)('meshq-submit.py submits the job script with its threads and resources as flags, and prints only the id', async () => {
    const dir = await newDir('submit')
    const jobscript = join(dir, 'snakejob.align.7.sh')
    const properties = { type: 'single', rule: 'align', jobid: 7, threads: 3, resources: { mem_mb: 1500.5, runtime: 2, meshq: '--pri 4 --cores 2' } }
    await writeFile(jobscript, `#!/bin/sh\n# properties = ${JSON.stringify(properties)}\necho ran > ran.txt\n`)
    const submitted = await script('meshq-submit.py', ['--retries', '1', jobscript], { cwd: dir })
    expect(submitted.code, submitted.stderr).toBe(0)
    expect(submitted.stdout).toMatch(/^[a-z2-7]+-\d+\n$/)
    const id = submitted.stdout.trim()
    const job = await json<JobView>(nodes[1].home, ['show', id])
    expect(job).toMatchObject({ cmd: ['/bin/sh', jobscript], cwd: dir, group: 'align', name: 'align.7', pri: 4, retries: 1, memBytes: 1501 * 2 ** 20, timeoutMs: 2 * 60_000 })
    expect(job.cores, 'the rule\'s meshq resource comes after threads, and wins').toBe(2)
    await waitFor(async () => (await script('meshq-status.sh', [id], { cwd: dir })).stdout === 'success\n', { what: 'the job to succeed', timeout: 60_000 })
    expect(await readFile(join(dir, 'ran.txt'), 'utf8')).toBe('ran\n')
  }, 120_000)

  it('meshq-status.sh answers running, success or failed, and failed for a job no member knows', async () => {
    const dir = await newDir('status')
    const [succeeds, fails, delayed, killed] = await submitIds([{ cmd: ['true'] }, { cmd: ['sh', '-c', 'exit 3'] }, { cmd: ['true'], delay: '1h' }, { cmd: ['sleep', '300'] }])
    await ok(nodes[0].home, ['kill', killed])
    const expected: Array<[string, string]> = [[succeeds, 'success'], [fails, 'failed'], [delayed, 'running'], [killed, 'failed'], ['zzzzzz-1', 'failed']]
    await waitFor(async () => {
      for (const [id, word] of expected) {
        const answer = await script('meshq-status.sh', [id], { cwd: dir })
        if (answer.code !== 0 || answer.stdout !== `${word}\n`) return false
      }
      return true
    }, { what: 'the five answers', timeout: 60_000 })
  }, 120_000)

  it('meshq-status.sh says running, with the error on stderr, when the node cannot answer', async () => {
    const answer = await script('meshq-status.sh', ['abcdef-1'], { cwd: await newDir('unreachable'), home: join(work.dir, 'no-node') })
    expect(answer).toMatchObject({ code: 0, stdout: 'running\n' })
    expect(answer.stderr).toMatch(/meshq-status: .*cannot reach the meshq node/)
  })

  it('meshq-cancel.sh kills the jobs it is given', async () => {
    const ids = await submitIds([{ cmd: ['sleep', '300'] }, { cmd: ['sleep', '300'] }, { cmd: ['true'] }])
    const states = async (): Promise<string> => (await Promise.all(ids.map(async id => (await json<JobView>(nodes[1].home, ['show', id])).state))).join(' ')
    await waitFor(async () => await states() === 'running running done', { what: 'the sleeps to run', timeout: 60_000 })
    const cancelled = await script('meshq-cancel.sh', ids, { cwd: work.dir })
    expect(cancelled.code).toBe(0)
    await waitFor(async () => await states() === 'killed killed done', { what: 'the two sleeps to be killed', timeout: 60_000 })
  }, 120_000)
})

interface Run {
  dir: string
  /** Resolves with Snakemake's exit code (or signal name) and its output. */
  exited: Promise<{ code: number | string, output: string }>
  interrupt: () => void
}

/** Runs `snakemake --profile contrib/snakemake` on the Snakefile, submitting through the first node. */
async function runWorkflow (name: string, snakefile: string): Promise<Run> {
  const dir = await newDir(name)
  await writeFile(join(dir, 'Snakefile'), snakefile)
  const child = spawn('snakemake', ['--profile', PROFILE, '--nocolor'], {
    cwd: dir,
    // CI=true: Snakemake 7 polls the statuses of its jobs every second instead of every 10 s
    env: { ...process.env, PATH: `${bin}:${snakemakePythonDir()}${process.env.PATH ?? ''}`, MESHQ_HOME: nodes[0].home, CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<{ code: number | string, output: string }>(resolve => {
    child.once('exit', (code, signal) => resolve({ code: code ?? signal ?? 'unknown', output }))
  })
  return { dir, exited, interrupt: () => child.kill('SIGINT') }
}

async function jobsOfGroup (group: string): Promise<JobView[]> {
  return (await json<JobView[]>(nodes[1].home, ['ls', '--group', group])).reverse()
}

async function lines (file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\n').filter(line => line !== '')
}

describe.skipIf(skip !== undefined)(`Snakemake (${snakemake ?? 'absent'}) through contrib/snakemake on a 2-node mesh`, () => {
  it(`runs a fan-out of ${FAN_OUT} and a fan-in, each rule once, with threads, mem_mb and runtime as --cores, --mem and --timeout`, async () => {
    const run = await runWorkflow('fan', `
localrules: all
rule all:
    input: "sum.txt"
rule work:
    output: "out/{i}.txt"
    resources: mem_mb=200, runtime=5
    shell: "echo work {wildcards.i} >> starts.log; echo {wildcards.i} > {output}"
rule gather:
    input: expand("out/{i}.txt", i=range(${FAN_OUT}))
    output: "sum.txt"
    threads: 2
    shell: "echo gather >> starts.log; cat {input} > {output}"
`)
    const started = Date.now()
    const { code, output } = await run.exited
    console.log(`fan-out workflow: ${Date.now() - started} ms`)
    expect(code, output).toBe(0)
    const starts = await lines(join(run.dir, 'starts.log'))
    expect(starts.sort()).toEqual([...Array.from({ length: FAN_OUT }, (_, i) => `work ${i}`), 'gather'].sort())
    expect(await lines(join(run.dir, 'sum.txt'))).toEqual(Array.from({ length: FAN_OUT }, (_, i) => String(i)))
    const workJobs = await jobsOfGroup('work')
    expect(workJobs).toHaveLength(FAN_OUT)
    console.log(`the ${FAN_OUT} work jobs ran on ${new Set(workJobs.map(job => job.node)).size} of the 2 nodes`)
    for (const job of workJobs) {
      expect(job.state).toBe('done')
      expect(job.attempts).toHaveLength(1)
      expect(job).toMatchObject({ cores: 1, memBytes: 200 * 2 ** 20, timeoutMs: 5 * 60_000 })
    }
    const [gather] = await jobsOfGroup('gather')
    expect(gather).toMatchObject({ state: 'done', cores: 2, attempts: [expect.anything()] })
    expect(gather.timeoutMs).toBeUndefined()
  }, 240_000)

  it('fails the workflow when a rule fails, and runs nothing after it', async () => {
    const run = await runWorkflow('failing', `
localrules: all
rule all:
    input: "after.txt"
rule broken:
    output: "broken.txt"
    shell: "echo broken >> starts.log; exit 3"
rule after:
    input: "broken.txt"
    output: "after.txt"
    shell: "echo after >> starts.log; touch {output}"
`)
    const { code, output } = await run.exited
    expect(code, output).not.toBe(0)
    expect(await lines(join(run.dir, 'starts.log'))).toEqual(['broken'])
    const [broken] = await jobsOfGroup('broken')
    // the job script ends `... && exit 0 || exit 1`
    expect(broken).toMatchObject({ state: 'failed', exitCode: 1 })
    expect(await jobsOfGroup('after')).toEqual([])
  }, 180_000)

  it('SIGINT to Snakemake kills its running meshq jobs', async () => {
    const run = await runWorkflow('interrupted', `
localrules: all
rule all:
    input: expand("slept/{i}.txt", i=range(2))
rule sleepy:
    output: "slept/{i}.txt"
    shell: "sleep 600; touch {output}"
`)
    const running = await waitFor(async () => {
      const jobs = await jobsOfGroup('sleepy')
      return jobs.length === 2 && jobs.every(job => job.state === 'running') ? jobs : undefined
    }, { what: 'the two sleepy jobs to run', timeout: 60_000 })
    run.interrupt()
    const { code, output } = await run.exited
    expect(code, output).not.toBe(0)
    await waitFor(async () => (await jobsOfGroup('sleepy')).every(job => job.state === 'killed'), { what: 'the sleepy jobs to be killed', timeout: 60_000 })
    expect((await jobsOfGroup('sleepy')).map(job => job.id).sort()).toEqual(running.map(job => job.id).sort())
  }, 180_000)
})
