/**
 * `meshq node` processes, each in its network namespace, and the CLI run against them from the
 * root namespace (the control socket `$MESHQ_HOME/meshq.sock` is a file, reachable from anywhere).
 */
import { execFile, spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))

export class ClusterError extends Error {
  name = 'ClusterError'
}

/** Polls `condition` until it returns a truthy value; throws after `timeout` ms. */
export async function waitFor (condition, { timeout = 30_000, interval = 200, what = 'a condition' } = {}) {
  const deadline = Date.now() + timeout
  let last
  for (;;) {
    try {
      const value = await condition()
      if (value) return value
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new ClusterError(`timed out after ${timeout} ms waiting for ${what}${last != null ? `: ${last.message}` : ''}`)
    await new Promise(resolve => setTimeout(resolve, interval))
  }
}

/** Runs one `meshq` client command against a home; resolves with {code, stdout, stderr}. */
export async function meshq (home, args, { input, timeout = 60_000 } = {}) {
  return await new Promise(resolve => {
    const child = execFile(process.execPath, [CLI, ...args], {
      env: { ...process.env, MESHQ_HOME: home, NO_COLOR: '1' }, timeout, maxBuffer: 256 * 1024 * 1024
    }, (err, stdout, stderr) => {
      resolve({ code: err == null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr })
    })
    child.stdin.end(input ?? '')
  })
}

export async function ok (home, args, options) {
  const r = await meshq(home, args, options)
  if (r.code !== 0) throw new ClusterError(`meshq ${args.join(' ')} exited ${r.code}: ${(r.stderr + r.stdout).trim().slice(0, 500)}`)
  return r.stdout
}

export async function json (home, args) {
  return JSON.parse(await ok(home, [...args, '--json']))
}

/** One node: number i (1-based), its home, and its current process (if running). */
export class FaultNode {
  constructor ({ index, home, net, slots, env, args = [], log }) {
    Object.assign(this, { index, home, net, slots, env, args, log })
    this.process = undefined
    this.exited = Promise.resolve(null)
    this.output = ''
    this.startedAt = 0
  }

  get name () { return `n${this.index}` }
  get running () { return this.process != null }
  get pid () { return this.process?.pid }

  /** Starts `meshq node` in the node's namespace and waits until it answers, unless `wait: false`. */
  async start ({ join: token, extraArgs = [], env = {}, wait = true } = {}) {
    if (this.process != null) throw new ClusterError(`${this.name} is already running`)
    await mkdir(this.home, { recursive: true })
    const args = [CLI, 'node', '--listen', this.net.listen(this.index), '--slots', String(this.slots), ...(token != null ? ['--join', token] : []), ...this.args, ...extraArgs]
    const child = spawn(this.net.wrap(this.index)[0], [...this.net.wrap(this.index).slice(1), process.execPath, ...args], {
      env: { ...process.env, ...this.env, ...env, MESHQ_HOME: this.home, FAULT_NODE: this.name },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    this.process = child
    this.output = ''
    this.startedAt = Date.now()
    const file = createWriteStream(this.log, { flags: 'a' })
    file.write(`\n==== ${new Date().toISOString()} start ${this.name} pid ${child.pid}\n`)
    const take = chunk => {
      this.output = (this.output + chunk.toString()).slice(-200_000)
      file.write(chunk)
    }
    child.stdout.on('data', take)
    child.stderr.on('data', take)
    this.exited = new Promise(resolve => child.once('exit', (code, signal) => {
      file.end(`==== exit ${code ?? signal}\n`)
      if (this.process === child) this.process = undefined
      resolve(code ?? signal)
    }))
    if (wait) await this.ready()
  }

  async ready (timeout = 60_000) {
    await waitFor(async () => {
      if (this.process == null) throw new ClusterError(`${this.name} exited during start:\n${this.output.slice(-2000)}`)
      const ready = /meshq node (\S+) ready/.exec(this.output)
      if (ready == null || (await meshq(this.home, ['ls', '--limit', '1'])).code !== 0) return false
      this.id = ready[1]
      return true
    }, { what: `${this.name} to start`, timeout })
  }

  signal (sig) {
    if (this.process == null) throw new ClusterError(`${this.name} is not running`)
    this.process.kill(sig)
  }

  /** Sends `sig` and waits for the process to end. */
  async stop (sig = 'SIGTERM') {
    if (this.process == null) return null
    this.process.kill(sig)
    return await this.exited
  }

  cli (args, options) { return meshq(this.home, args, options) }
  ok (args, options) { return ok(this.home, args, options) }
  json (args) { return json(this.home, args) }
}

/**
 * Founds a cluster on node 1 and joins the others with invite tokens. `homeSetUp(i, home)` may
 * prepare a home before its node first starts (a small tmpfs, say).
 */
export async function startCluster ({ net, dir, slots = 2, nodeArgs = [], nodeEnv = () => ({}), homeOf = i => join(dir, `n${i}`), homeSetUp }) {
  const nodes = []
  for (let i = 1; i <= net.size; i++) {
    await mkdir(homeOf(i), { recursive: true })
    await homeSetUp?.(i, homeOf(i))
    nodes.push(new FaultNode({ index: i, home: homeOf(i), net, slots, env: nodeEnv(i), args: nodeArgs, log: join(dir, `n${i}.log`) }))
  }
  await nodes[0].start()
  for (const node of nodes.slice(1)) {
    const token = (await nodes[0].ok(['invite'])).trim()
    await node.start({ join: token })
  }
  await allUp(nodes, 60_000)
  return nodes
}

/** Waits until every running node sees every other running node up. */
export async function allUp (nodes, timeout = 60_000) {
  const live = nodes.filter(n => n.running)
  await waitFor(async () => {
    const views = await Promise.all(live.map(n => n.json(['peers'])))
    return views.every(peers => live.every(n => peers.some(p => p.id === n.id && p.state === 'up')))
  }, { what: 'every node to see the others up', timeout, interval: 500 })
}
