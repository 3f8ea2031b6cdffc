/**
 * Real meshq nodes for the benchmark: each a `node dist/cli/main.js node` process on its own temp
 * home, driven through the control API (ApiClient over the unix socket) and, for joining, the CLI.
 * Every process and temp dir is registered so that `cleanupAll` (also run on error and SIGINT)
 * leaves nothing behind.
 */
import { execFile, spawn } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ApiClient } from '../../dist/api/client.js'
import { fatal, now, rssMiB, waitFor, withTimeout } from './util.js'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** The CLI the nodes run: dist/cli/main.js, or the snapshot of dist/ taken at the start (see snapshotDist). */
let CLI = join(ROOT, 'dist', 'cli', 'main.js')

/**
 * Copies dist/ to `target` (which must be inside the repository, so that node_modules resolves) and
 * runs nodes from the copy: others may rebuild dist/ during a long run, and a node must not start
 * from a half-written build, nor scenarios measure different builds. Retries until dist/ was not
 * changing during the copy.
 */
export async function snapshotDist (target) {
  const source = join(ROOT, 'dist')
  const builtAt = await waitFor(async () => {
    const before = await newestMtime(source)
    if (Date.now() - before < 2000) return false // a build is being written
    await rm(target, { recursive: true, force: true })
    await cp(source, target, { recursive: true })
    return await newestMtime(source) === before && before
  }, { what: 'dist/ to stay unchanged while it is copied (is a build running?)', timeout: 120_000, interval: 500 })
  track(async () => { await rm(target, { recursive: true, force: true }) })
  CLI = join(target, 'cli', 'main.js')
  return new Date(builtAt).toISOString()
}

async function newestMtime (dir) {
  let newest = 0
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, (await stat(join(entry.parentPath, entry.name))).mtimeMs)
  }
  return newest
}

/** Live resources: nodes (killed) and temp dirs (removed), cleaned up newest first. */
const resources = new Set()

/** Registers a cleanup for `cleanupAll`; returns a function that unregisters it. */
export function track (cleanup) {
  const item = { cleanup }
  resources.add(item)
  return () => resources.delete(item)
}

/** Kills every node started and removes every temp dir made so far. */
export async function cleanupAll () {
  const items = [...resources].reverse()
  resources.clear()
  for (const item of items) {
    try {
      await item.cleanup()
    } catch (err) {
      process.stderr.write(`cleanup: ${err.message}\n`)
    }
  }
}

const dirs = new Map()

export async function tempDir (prefix = 'meshq-bench-') {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  dirs.set(dir, track(async () => { await rm(dir, { recursive: true, force: true }) }))
  return dir
}

/** Removes a dir made by `tempDir` now rather than at the end. */
export async function removeDir (dir) {
  dirs.get(dir)?.()
  dirs.delete(dir)
  await rm(dir, { recursive: true, force: true })
}

/** Stops nodes and removes their homes. */
export async function disposeNodes (nodes) {
  await Promise.all(nodes.map(async node => { await stop(node) }))
  for (const home of new Set(nodes.map(n => n.home))) await removeDir(home)
}

/** Runs one `meshq` command against a home: { code, stdout, stderr }. */
export async function cli (home, args, { input, timeout = 60_000 } = {}) {
  return await new Promise(resolve => {
    const child = execFile(process.execPath, [CLI, ...args], {
      env: { ...process.env, MESHQ_HOME: home, NO_COLOR: '1' },
      timeout,
      maxBuffer: 64 * 1024 * 1024
    }, (err, stdout, stderr) => {
      const code = err == null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, stdout, stderr })
    })
    child.stdin.end(input ?? '')
  })
}

/** The command line that runs the meshq CLI being benchmarked. */
export const cliArgv = () => [process.execPath, CLI]

/**
 * The README's `meshq` (bin/meshq, which starts the pinned Node on bin/meshq.js) in a temp dir laid
 * out like a clone, whose dist/ is the build the nodes run: returns the path of its bin/meshq.
 */
export async function readmeCli () {
  const clone = await tempDir('meshq-bench-clone-')
  await mkdir(join(clone, 'bin'))
  // copies, not links: bin/meshq.js finds dist/ beside its own real path
  for (const file of ['meshq', 'meshq.js']) await cp(join(ROOT, 'bin', file), join(clone, 'bin', file))
  await symlink(dirname(dirname(CLI)), join(clone, 'dist'))
  await symlink(join(ROOT, 'node_modules'), join(clone, 'node_modules'))
  return join(clone, 'bin', 'meshq')
}

export async function cliOk (home, args, options) {
  const result = await cli(home, args, options)
  if (result.code !== 0) throw new Error(`meshq ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`)
  return result.stdout
}

const READY = /meshq node (\S+) ready/

/** Every node started, to report those that died on their own when a scenario fails. */
const started = new Set()

/** Nodes that exited without the benchmark stopping or killing them: exit status and last output. */
export function unexpectedExits () {
  return [...started].filter(n => !n.alive() && !n.expectedExit).map(n => {
    started.delete(n)
    const tail = (n.stdout() + n.stderr()).trim().split('\n').slice(-15).join('\n    ')
    return `node ${n.label ?? n.id ?? n.home} (pid ${n.pid}) exited with ${n.exitStatus()}:\n    ${tail}`
  })
}

/**
 * Starts `meshq node` on a new temp home (or `home`) and waits until it printed `ready` and
 * `meshq ls` answers. `debug` sets DEBUG (e.g. 'meshq:claims') so its lines can be counted.
 */
export async function startNode ({ slots = 2, join: token, home, debug, args = [], timeout = 60_000 } = {}) {
  home ??= await tempDir()
  const argv = [CLI, 'node', '--listen', '/ip4/127.0.0.1/tcp/0', '--slots', String(slots), ...(token != null ? ['--join', token] : []), ...args]
  const env = { ...process.env, MESHQ_HOME: home, NO_COLOR: '1' }
  delete env.DEBUG
  if (debug != null) env.DEBUG = debug
  const spawnedAt = now()
  // own process group: a Ctrl-C on the terminal reaches the benchmark, which stops the nodes itself
  const child = spawn(process.execPath, argv, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let stdout = ''
  let stderr = ''
  let readyAt
  child.stdout.setEncoding('utf8').on('data', chunk => {
    stdout += chunk
    if (readyAt == null && READY.test(stdout)) readyAt = now()
  })
  child.stderr.setEncoding('utf8').on('data', chunk => { stderr += chunk })
  let exitCode
  const exited = new Promise(resolve => child.once('exit', (code, signal) => {
    exitCode = code ?? signal
    resolve(exitCode)
  }))
  const untrack = track(async () => { await stop(node) })
  const node = {
    home,
    pid: child.pid,
    id: undefined,
    api: new ApiClient(join(home, 'meshq.sock')),
    spawnedAt,
    stdout: () => stdout,
    stderr: () => stderr,
    alive: () => exitCode === undefined,
    exitStatus: () => exitCode,
    /** Set when the benchmark itself stops or kills the node. */
    expectedExit: false,
    exited,
    untrack,
    rss: async () => await rssMiB(child.pid),
    /** Lines of the node's stderr matching `pattern` (for DEBUG output). */
    lines: pattern => stderr.split('\n').filter(line => pattern.test(line)),
    countLines: pattern => node.lines(pattern).length,
    kill: signal => {
      node.expectedExit = true
      if (exitCode === undefined) child.kill(signal)
    }
  }
  started.add(node)
  void exited.then(() => { if (node.expectedExit) started.delete(node) })
  await waitFor(async () => {
    if (exitCode !== undefined) throw fatal(`meshq node on ${home} exited (${exitCode}) while starting:\n${stdout}${stderr.slice(-2000)}`)
    return readyAt != null && (await cli(home, ['ls'])).code === 0
  }, { what: `meshq node on ${home} to be ready`, timeout, interval: 100 })
  node.id = READY.exec(stdout)[1]
  node.readyMs = readyAt - spawnedAt
  return node
}

/** SIGTERM (running jobs are killed), then SIGKILL if the node has not exited within 10 s. */
export async function stop (node, { signal = 'SIGTERM', timeout = 10_000 } = {}) {
  node.kill(signal)
  try {
    await withTimeout(node.exited, timeout, `node ${node.id ?? node.home} to exit`)
  } catch {
    node.kill('SIGKILL')
    await node.exited
  }
  node.untrack()
}

/** A join token from the founder (`meshq invite`). */
export async function invite (founder) {
  return (await cliOk(founder.home, ['invite'])).trim()
}

/** A founder and `size - 1` nodes that joined it with `meshq invite` tokens, all seeing each other up. */
export async function startCluster (size, options = {}) {
  const nodes = [await startNode(options)]
  try {
    for (let i = 1; i < size; i++) nodes.push(await startNode({ ...options, home: undefined, join: await invite(nodes[0]) }))
    // every node must hear every other one: a big mesh on one machine takes longer to settle
    await waitMesh(nodes, 60_000 + 5000 * size)
  } catch (err) {
    await disposeNodes(nodes)
    throw err
  }
  return nodes
}

/** Waits until every node lists exactly these nodes as members, all `up` (GET /v1/peers = `meshq peers --json`). */
export async function waitMesh (nodes, timeout = 60_000) {
  const ids = nodes.map(n => n.id).sort().join(',')
  await waitFor(async () => {
    for (const node of nodes) {
      if (!node.alive()) throw fatal(`node ${node.id} died:\n${node.stderr().slice(-2000)}`)
      const { peers } = await node.api.request('GET', '/peers')
      if (peers.map(p => p.id).sort().join(',') !== ids || !peers.every(p => p.state === 'up')) return false
    }
    return true
  }, { what: `${nodes.length} nodes to see each other up`, timeout, interval: 200 })
}

/** What the nodes' DEBUG output says about a job (the last few lines per node), for error messages. */
export function debugAbout (nodes, id, max = 6) {
  const out = []
  for (const node of nodes) {
    const lines = node.lines(new RegExp(`\\b${id}\\b`)).slice(-max)
    if (lines.length > 0) out.push(`[${node.label ?? node.id?.slice(-6)}] ${lines.map(l => l.replace(/^\S+ /, '')).join(' | ')}`)
  }
  return out.length > 0 ? `; debug: ${out.join('; ')}` : ''
}

/** Submits jobs in one request; returns their records. */
export async function submit (node, jobs) {
  return (await node.api.request('POST', '/jobs', { jobs })).jobs
}

export async function pause (node, group) {
  await node.api.request('POST', `/groups/${encodeURIComponent(group)}/pause`, {})
}

export async function resume (node, group) {
  await node.api.request('POST', `/groups/${encodeURIComponent(group)}/resume`, {})
}

/**
 * The node's event stream, subscribed when this resolves. Keeps, per job id, the latest record and
 * the time (monotonic ms) each id was first seen and first seen in each state.
 */
export async function watchEvents (node) {
  const abort = new AbortController()
  const stream = await node.api.openEvents(abort.signal)
  const jobs = new Map()
  const waiters = new Set()
  let failure
  const check = () => {
    for (const waiter of waiters) {
      try {
        if (failure != null) throw failure
        if (!waiter.test()) continue
        waiter.resolve()
      } catch (err) {
        waiter.reject(err)
      }
      waiters.delete(waiter)
    }
  }
  void (async () => {
    try {
      for await (const event of stream) {
        if (event.type !== 'job') continue
        const t = now()
        let record = jobs.get(event.job.id)
        if (record == null) jobs.set(event.job.id, record = { first: t, at: {} })
        record.job = event.job
        record.at[event.job.state] ??= t
        check()
      }
      failure = new Error(`the event stream of ${node.id} ended`)
    } catch (err) {
      failure = abort.signal.aborted ? new Error('event stream closed') : err
    }
    check()
  })()
  return {
    jobs,
    /** Resolves once `test()` holds (checked now and after every event); rejects after `timeout`. */
    until: async (test, { what, timeout = 60_000 }) => await withTimeout(new Promise((resolve, reject) => {
      waiters.add({ test, resolve, reject })
      check()
    }), timeout, what),
    close: () => abort.abort()
  }
}

export const TERMINAL = new Set(['done', 'failed', 'killed'])

/**
 * Waits (on a watcher) until all `ids` are terminal; throws if any ended other than `done`, after
 * `timeout`, or (with `stallMs`) when no job has finished for that long. The error says what the
 * unfinished jobs looked like last, and has `pending` (their ids) and `stalled`.
 */
export async function untilAllDone (watch, ids, { what, timeout, stallMs = Infinity }) {
  const pending = new Set(ids)
  let progressAt = now()
  let stallTimer
  const stalled = new Promise((resolve, reject) => {
    stallTimer = setInterval(() => {
      if (now() - progressAt < stallMs) return
      const err = new Error(`${what}: no job finished for ${stallMs} ms`)
      err.stalled = true
      reject(err)
    }, Math.min(1000, stallMs))
  })
  try {
    await Promise.race([stalled, watch.until(() => {
      for (const id of pending) {
        const state = watch.jobs.get(id)?.job.state
        if (state == null || !TERMINAL.has(state)) continue
        if (state !== 'done') throw new Error(`job ${id} ended ${state}: ${JSON.stringify(watch.jobs.get(id).job.attempts.at(-1))}`)
        pending.delete(id)
        progressAt = now()
      }
      return pending.size === 0
    }, { what: `${what} (${ids.length} jobs to finish)`, timeout })])
  } catch (err) {
    if (pending.size > 0 && /timed out|no job finished/.test(err.message)) err.message += `; ${pending.size} unfinished: ${describeJobs(watch, [...pending])}`
    err.pending = [...pending]
    throw err
  } finally {
    clearInterval(stallTimer)
  }
  return ids.map(id => watch.jobs.get(id))
}

/** Counts by last seen state, and the last record of a few, for error messages. */
function describeJobs (watch, ids) {
  const states = {}
  for (const id of ids) {
    const state = watch.jobs.get(id)?.job.state ?? 'never seen'
    states[state] = (states[state] ?? 0) + 1
  }
  const samples = ids.slice(0, 3).map(id => {
    const job = watch.jobs.get(id)?.job
    return job == null ? id : `${id} ${job.state}${job.reason != null ? ` (${job.reason})` : ''} attempts=${JSON.stringify(job.attempts.map(a => ({ epoch: a.epoch, node: a.node.slice(-6), startedAt: a.startedAt, endedAt: a.endedAt, failReason: a.failReason })))}`
  })
  return `${JSON.stringify(states)}; e.g. ${samples.join('; ')}`
}
