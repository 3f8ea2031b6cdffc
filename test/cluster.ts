/**
 * End-to-end helpers: real `meshq node` processes on temp homes, driven through the real CLI.
 * Tests run the compiled CLI (test/global-setup.ts builds dist/ once).
 */
import { spawn, execFile } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir, waitFor } from './helpers.js'

export const CLI = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'dist', 'cli', 'main.js')

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs one `meshq` command against a home. */
export async function meshq (home: string, args: string[], options: { input?: string, env?: Record<string, string>, cwd?: string, timeout?: number } = {}): Promise<CliResult> {
  return await new Promise(resolve => {
    const child = execFile(process.execPath, [CLI, ...args], {
      env: { ...process.env, MESHQ_HOME: home, NO_COLOR: '1', ...options.env },
      cwd: options.cwd,
      timeout: options.timeout ?? 60_000,
      maxBuffer: 64 * 1024 * 1024
    }, (err, stdout, stderr) => {
      const code = err == null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
      resolve({ code, stdout, stderr })
    })
    if (options.input != null) child.stdin?.end(options.input)
    else child.stdin?.end()
  })
}

/** Like `meshq` but fails the test unless the command exits 0; returns stdout. */
export async function ok (home: string, args: string[], options: Parameters<typeof meshq>[2] = {}): Promise<string> {
  const result = await meshq(home, args, options)
  if (result.code !== 0) throw new Error(`meshq ${args.join(' ')} exited ${result.code}: ${result.stderr}${result.stdout}`)
  return result.stdout
}

export async function json<T = any> (home: string, args: string[]): Promise<T> {
  return JSON.parse(await ok(home, [...args, '--json'])) as T
}

export interface TestNode {
  home: string
  process: ChildProcess
  output: () => string
  /** Resolves with the exit code when the process ends. */
  exited: Promise<number | null>
  kill: (signal?: NodeJS.Signals) => Promise<number | null>
  cleanup: () => Promise<void>
}

/** Starts `meshq node` on a (new or given) home and waits until it answers on its socket. */
export async function startNode (options: { home?: string, args?: string[], env?: Record<string, string> } = {}): Promise<TestNode> {
  const temp = options.home == null ? await tempDir() : undefined
  const home = options.home ?? (temp as { dir: string }).dir
  const child = spawn(process.execPath, [CLI, 'node', '--listen', '/ip4/127.0.0.1/tcp/0', ...(options.args ?? [])], {
    env: { ...process.env, MESHQ_HOME: home, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)))
  let dead = false
  void exited.then(() => { dead = true })
  await waitFor(async () => {
    if (dead) throw new Error(`node exited during start:\n${output}`)
    return /ready/.test(output) && (await meshq(home, ['ls'])).code === 0
  }, { what: `node on ${home} to start`, timeout: 30_000 })
  const node: TestNode = {
    home,
    process: child,
    output: () => output,
    exited,
    kill: async (signal = 'SIGTERM') => {
      if (!dead) child.kill(signal)
      return await exited
    },
    cleanup: async () => {
      await node.kill('SIGKILL')
      await temp?.cleanup()
    }
  }
  return node
}

/** Whether any process is in process group `pgid`. */
export async function groupAlive (pgid: number): Promise<boolean> {
  const { readdir, readFile } = await import('node:fs/promises')
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (fields[0] !== 'Z' && Number(fields[2]) === pgid) return true
  }
  return false
}

/** A founder and a node that joined it, each with its own arguments, once each sees the other up. */
export async function twoNodes (founderArgs: string[], joinerArgs: string[]): Promise<[TestNode, TestNode]> {
  const founder = await startNode({ args: founderArgs })
  try {
    const joiner = await startNode({ args: [...joinerArgs, '--join', (await ok(founder.home, ['invite'])).trim()] })
    await waitFor(async () => (await json<Array<{ state: string }>>(founder.home, ['peers'])).every(p => p.state === 'up'), { what: 'both nodes up' })
    return [founder, joiner]
  } catch (err) {
    await founder.cleanup()
    throw err
  }
}

/** A founder and `size - 1` nodes that joined it with invite tokens. */
export async function startCluster (size: number, args: string[] = []): Promise<TestNode[]> {
  const founder = await startNode({ args })
  const nodes = [founder]
  try {
    for (let i = 1; i < size; i++) {
      const token = (await ok(founder.home, ['invite'])).trim()
      nodes.push(await startNode({ args: [...args, '--join', token] }))
    }
    await waitFor(async () => {
      const views = await Promise.all(nodes.map(async n => await json<Array<{ state: string }>>(n.home, ['peers'])))
      return views.every(peers => peers.length === size && peers.every(p => p.state === 'up'))
    }, { what: `${size} nodes to see each other up`, timeout: 30_000 })
  } catch (err) {
    await Promise.all(nodes.map(async n => await n.cleanup()))
    throw err
  }
  return nodes
}
