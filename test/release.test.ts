/**
 * Release readiness, checked on the committed tree as CI sees it: a clone of HEAD, set up and started
 * exactly as README.md's first command says, and the tarball `npm pack` makes of it, installed with
 * `npm install -g --prefix` and run. Both run a job through the real CLI.
 *
 * Slow (npm ci, npm pack and npm install, from the npm registry or its cache): it runs only with
 * MESHQ_SLOW_TESTS=1.
 */
import { execFile, spawn } from 'node:child_process'
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir, waitFor } from './helpers.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SLOW = process.env.MESHQ_SLOW_TESTS === '1'
const LOOPBACK = ['--listen', '/ip4/127.0.0.1/tcp/0']
const execFileAsync = promisify(execFile)

/**
 * The environment of a user's shell: without the variables npm and vitest set for this run, and
 * without this checkout's node_modules/.bin (its Node 24) on the PATH, so the clone gets its own.
 */
function userEnv (extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const ours = /^(npm_|VITEST|INIT_CWD$|NODE_ENV$|MESHQ_)/
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !ours.test(name)))
  const path = (process.env.PATH ?? '').split(delimiter).filter(dir => !dir.startsWith(join(ROOT, 'node_modules')))
  return { ...env, PATH: path.join(delimiter), NO_COLOR: '1', ...extra }
}

interface RunResult { code: number, stdout: string, stderr: string }

async function runIn (cwd: string, file: string, args: string[], env: NodeJS.ProcessEnv, timeout = 240_000): Promise<RunResult> {
  return await new Promise(resolve => {
    execFile(file, args, { cwd, env, timeout, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err == null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

async function mustRun (cwd: string, file: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const result = await runIn(cwd, file, args, env)
  if (result.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${result.code}:\n${result.stderr}${result.stdout}`)
  return result.stdout
}

/** A long-running command in its own process group, stopped (with everything it started) by `stop`. */
interface Background {
  output: () => string
  exited: () => boolean
  /** SIGTERM, then SIGKILL after 30 s; resolves to whether SIGTERM was enough. */
  stop: () => Promise<boolean>
}

function startBackground (cwd: string, file: string, args: string[], env: NodeJS.ProcessEnv): Background {
  const child = spawn(file, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  let done = false
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exit = new Promise<void>(resolve => child.once('close', () => { done = true; resolve() }))
  const signal = (name: NodeJS.Signals): void => {
    try { process.kill(-(child.pid as number), name) } catch { /* the group is gone */ }
  }
  return {
    output: () => output,
    exited: () => done,
    stop: async () => {
      if (done) return true
      signal('SIGTERM')
      const stopped = await Promise.race([exit.then(() => true), new Promise<boolean>(resolve => setTimeout(resolve, 30_000, false))])
      if (!stopped) signal('SIGKILL')
      await exit
      return stopped
    }
  }
}

/** Waits until `node` (a background `meshq node`) says it is ready and its home answers `meshq ls`. */
async function waitReady (node: Background, ls: () => Promise<RunResult>, timeout: number): Promise<void> {
  await waitFor(async () => {
    if (node.exited()) throw new Error(`exited:\n${node.output()}`)
    return /ready \(cluster/.test(node.output()) && (await ls()).code === 0
  }, { what: 'the node to start', timeout, interval: 500 })
}

/** The commands of README.md's first fenced code block, without their comments. */
function readmeCommands (readme: string): string[] {
  const block = /^```[^\n]*\n([\s\S]*?)^```/m.exec(readme)
  if (block === null) throw new Error('README.md has no fenced code block')
  return block[1].split('\n').map(line => line.replace(/(^|\s)#.*$/, '').trim()).filter(line => line !== '')
}

describe.skipIf(!SLOW)('release (MESHQ_SLOW_TESTS=1)', () => {
  let temp: { dir: string, cleanup: () => Promise<void> }
  let clone: string
  let dependenciesInstalled = false
  const stops: Array<() => Promise<boolean>> = []

  beforeAll(async () => {
    temp = await tempDir('meshq-release-')
    clone = join(temp.dir, 'clone')
    await mustRun(temp.dir, 'git', ['clone', '--quiet', '--no-hardlinks', ROOT, clone], userEnv())
  }, 120_000)

  afterAll(async () => {
    await Promise.all(stops.map(async stop => await stop()))
    await temp?.cleanup()
  }, 60_000)

  async function installDependencies (): Promise<void> {
    if (!dependenciesInstalled) await mustRun(clone, 'npm', ['ci', '--no-audit', '--no-fund'], userEnv())
    dependenciesInstalled = true
  }

  it('README.md: the first command sets up a clone and starts a node that runs jobs; the second is npm test', async () => {
    const [first, second] = readmeCommands(await readFile(join(clone, 'README.md'), 'utf8'))
    expect(first, 'the first README command should start a node').toMatch(/meshq node$/)
    expect(second).toBe('npm test')
    const home = join(temp.dir, 'readme-home')
    const env = userEnv({ MESHQ_HOME: home })
    // bin/meshq, which the first command puts on the PATH, from another directory; and npx, which also works
    const meshqOnPath = async (args: string[]): Promise<RunResult> => await runIn(temp.dir, join(clone, 'bin', 'meshq'), args, env)
    const node = startBackground(clone, 'sh', ['-c', `${first} ${LOOPBACK.join(' ')}`], env)
    stops.push(node.stop)
    await waitReady(node, async () => await meshqOnPath(['ls']), 240_000)
    dependenciesInstalled = true
    expect(await meshqOnPath(['sub', '--wait', '--', 'echo', 'from the README'])).toMatchObject({ code: 0, stdout: 'from the README\n' })
    expect(await runIn(clone, 'npx', ['--no-install', 'meshq', 'ls'], env)).toMatchObject({ code: 0 })
    expect(await node.stop(), 'the node stops on SIGTERM').toBe(true)
  }, 360_000)

  it('npm pack: the tarball installs with npm install -g --prefix and runs a node and a job', async () => {
    expect(Number(process.versions.node.split('.')[0]), 'the tests run on the Node 24 of node_modules').toBeGreaterThanOrEqual(22)
    await installDependencies()
    const packs = join(temp.dir, 'packs')
    await mkdir(packs)
    await mustRun(clone, 'npm', ['pack', '--pack-destination', packs], userEnv())
    const [tarball, ...others] = (await readdir(packs)).filter(name => name.endsWith('.tgz'))
    expect(others).toEqual([])
    const files = (await mustRun(packs, 'tar', ['tzf', tarball], userEnv())).split('\n').filter(Boolean)
    expect(files).toEqual(expect.arrayContaining([
      'package/package.json', 'package/README.md', 'package/bin/meshq.js', 'package/dist/cli/main.js',
      'package/dist/node/run.js', 'package/docs/meshq.service'
    ]))
    expect(files.filter(f => /^package\/(src|test|bench|scripts)\/|\.map$/.test(f))).toEqual([])

    const prefix = join(temp.dir, 'prefix')
    await mustRun(temp.dir, 'npm', ['install', '-g', '--prefix', prefix, join(packs, tarball), '--no-audit', '--no-fund'], userEnv())
    // The bin starts with `#!/usr/bin/env node`; this machine's own node is too old, so run it with ours.
    const bin = join(prefix, 'bin', 'meshq')
    const home = join(temp.dir, 'packed-home')
    const env = userEnv({ MESHQ_HOME: home })
    const meshq = async (args: string[]): Promise<RunResult> => await runIn(temp.dir, process.execPath, [bin, ...args], env)
    const { version } = JSON.parse(await readFile(join(clone, 'package.json'), 'utf8')) as { version: string }
    expect(await meshq(['--version'])).toMatchObject({ code: 0, stdout: `${version}\n` })

    const node = startBackground(temp.dir, process.execPath, [bin, 'node', ...LOOPBACK], env)
    stops.push(node.stop)
    await waitReady(node, async () => await meshq(['ls']), 60_000)
    expect(await meshq(['sub', '--wait', '--', 'echo', 'packed'])).toMatchObject({ code: 0, stdout: 'packed\n' })
    expect(await node.stop(), 'the node stops on SIGTERM').toBe(true)
  }, 480_000)
})

describe('package.json', () => {
  it('declares every package that dist/ imports as a dependency', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
    const { stdout } = await execFileAsync('grep', ['-rhoE', '(from|import\\() *[\'"][^\'"./][^\'"]*[\'"]', join(ROOT, 'dist'), '--include=*.js'])
    const imported = new Set(stdout.split('\n').filter(Boolean).map(line => {
      const specifier = line.replace(/^.*['"]([^'"]+)['"]$/, '$1')
      return specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]
    }).filter(name => !name.startsWith('node:')))
    expect(imported.size).toBeGreaterThan(5)
    expect([...imported].filter(name => pkg.dependencies[name] === undefined)).toEqual([])
  })
})
