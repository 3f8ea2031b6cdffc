#!/usr/bin/env node
/**
 * meshq benchmarks (design.md §7): `npm run bench [-- --quick | --full] [--only 1,4] [--no-docs]`.
 * Needs a build (`npx tsc -p tsconfig.build.json`): it runs dist/cli/main.js and imports dist/.
 * Prints a table per scenario, writes bench/results/latest.json and, for full default or --full runs,
 * docs/benchmarks.md and docs/benchmarks.svg.
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

const ROOT = new URL('..', import.meta.url).pathname

const MODES = {
  quick: {
    throughputOneNode: { n: 100 },
    throughputMesh: { n: 60 },
    submitThroughput: { singles: 50, batches: 2 },
    arrays: { queued: 100_000, runs: 100 },
    submitVsHistory: { sizes: [1000, 3000], probes: 30 },
    submitToStart: { n: 15 },
    submitToVisible: { n: 15 },
    claimRace: { nodes: 3, jobs: 45 },
    failover: { reps: 1, ttrMs: 3000, sizes: [2, 3] },
    catchUp: { sizes: [2000], sealWaitMs: 5000 },
    top: { jobs: 10_000, chunk: 5000, changesPerSecond: 200, loadSeconds: 5 },
    manyNodes: { sizes: [6], jobs: 120 },
    cliWallTime: { runs: 5, history: 100 },
    idleNodes: { sizes: [1], settleSeconds: 12, seconds: 5 }
  },
  default: {
    throughputOneNode: { n: 1000 },
    throughputMesh: { n: 600 },
    submitThroughput: { singles: 300, batches: 5 },
    arrays: { queued: 1_000_000, runs: 1000 },
    submitVsHistory: { sizes: [1000, 10_000, 30_000], probes: 100 },
    submitToStart: { n: 100 },
    submitToVisible: { n: 100 },
    claimRace: { nodes: 3, jobs: 300 },
    failover: { reps: 3, ttrMs: 3000, sizes: [2, 3] },
    catchUp: { sizes: [10_000], sealWaitMs: 20_000 },
    top: { jobs: 100_000, chunk: 10_000, changesPerSecond: 200, loadSeconds: 20 },
    manyNodes: { sizes: [10, 20], jobs: 400 },
    cliWallTime: { runs: 20, history: 100 },
    idleNodes: { sizes: [1, 5], settleSeconds: 15, seconds: 20 }
  },
  full: {
    throughputOneNode: { n: 1000 },
    throughputMesh: { n: 600 },
    submitThroughput: { singles: 300, batches: 10 },
    arrays: { queued: 1_000_000, runs: 1000 },
    submitVsHistory: { sizes: [1000, 10_000, 50_000, 100_000], probes: 100 },
    submitToStart: { n: 100 },
    submitToVisible: { n: 100 },
    claimRace: { nodes: 5, jobs: 300 },
    failover: { reps: 3, ttrMs: 3000, sizes: [2, 3] },
    catchUp: { sizes: [10_000, 100_000], sealWaitMs: 30_000 },
    top: { jobs: 100_000, chunk: 10_000, changesPerSecond: 200, loadSeconds: 30 },
    manyNodes: { sizes: [10, 20], jobs: 2000 },
    cliWallTime: { runs: 20, history: 100 },
    idleNodes: { sizes: [1, 5], settleSeconds: 15, seconds: 30 }
  }
}

const SCENARIOS = [
  ['throughputOneNode', 'Trivial-job throughput on 1 node'],
  ['throughputMesh', 'Trivial-job throughput on a 3-node mesh (one machine)'],
  ['submitThroughput', 'Submit throughput, single and batch'],
  ['arrays', 'Job arrays: a million queued tasks, and a run'],
  ['submitVsHistory', 'Submit cost as history grows'],
  ['submitToStart', 'Submit-to-start latency, idle 3-node mesh'],
  ['submitToVisible', 'Submit-to-visible latency on the other nodes'],
  ['claimRace', 'Claim conflicts and duplicate runs under a race'],
  ['failover', 'Failover after SIGKILL of the holder, relative to TTR'],
  ['catchUp', 'New-node catch-up'],
  ['top', '`meshq top` on a large ledger, in a real terminal'],
  ['manyNodes', 'Many real nodes racing (10 and 20)'],
  ['cliWallTime', 'CLI wall time'],
  ['idleNodes', 'Idle nodes: CPU and memory']
]

const USAGE = `usage: npm run bench -- [--quick | --full] [--only N,N...] [--no-docs] [--write-docs]
  (default)     the documented run, 6 to 12 minutes; writes docs/benchmarks.md and .svg
  --quick       a smoke run, under 2 minutes; does not touch docs/ unless --write-docs
  --full        100k-job histories, 5-node race (long)
  --only 1,4    only these scenarios (1-${SCENARIOS.length}); does not touch docs/ unless --write-docs
  --no-docs     never write docs/benchmarks.md and docs/benchmarks.svg
Always writes bench/results/latest.json. Scenarios:
${SCENARIOS.map(([, title], i) => `  ${i + 1}. ${title}`).join('\n')}`

function options () {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      full: { type: 'boolean', default: false },
      only: { type: 'string' },
      'no-docs': { type: 'boolean', default: false },
      'write-docs': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  if (values.quick && values.full) throw new Error('--quick and --full exclude each other')
  const only = values.only?.split(',').map(Number)
  if (only != null && !only.every(n => Number.isInteger(n) && n >= 1 && n <= SCENARIOS.length)) throw new Error(`bad --only '${values.only}' (scenario numbers 1-${SCENARIOS.length})`)
  const mode = values.quick ? 'quick' : values.full ? 'full' : 'default'
  const docs = !values['no-docs'] && (values['write-docs'] || (mode !== 'quick' && only == null))
  return { mode, only, docs }
}

function sh (cmd, args) {
  try {
    return execFileSync(cmd, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return undefined
  }
}

async function main () {
  const opts = options()
  const [major] = process.versions.node.split('.').map(Number)
  if (major < 22) throw new Error(`Node ${process.versions.node} is too old: run with Node 24 (npx node bench/run.js, or npm run bench)`)
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: build first with `npx tsc -p tsconfig.build.json`')

  // imported only now: they load dist/, whose absence is reported above
  const scenarios = await import('./scenarios.js')
  const { cleanupAll, disposeNodes, snapshotDist, startCluster, tempDir, unexpectedExits } = await import('./lib/nodes.js')
  const { chartSvg, markdownReport, scenarioText } = await import('./lib/report.js')
  const { progress } = await import('./lib/util.js')
  const { VERSION } = await import('../dist/version.js')

  let interrupted = false
  const onSignal = signal => {
    if (interrupted) return
    interrupted = true
    process.stderr.write(`\n${signal}: stopping nodes and removing temp dirs…\n`)
    cleanupAll().finally(() => process.exit(130))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  const parallel = sh('parallel', ['--version'])?.split('\n')[0]
  const dirty = (sh('git', ['status', '--porcelain', '--', 'src']) ?? '') !== ''
  const meta = {
    date: new Date().toISOString(),
    mode: opts.mode + (opts.only != null ? ` (scenarios ${opts.only.join(',')})` : ''),
    version: VERSION,
    commit: (sh('git', ['rev-parse', '--short', 'HEAD']) ?? 'unknown') + (dirty ? ' + uncommitted changes in src/' : ''),
    node: process.versions.node,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model?.trim() ?? 'unknown',
    loadStart: loadavg().map(l => l.toFixed(2)).join(' '),
    parallel: parallel ?? null
  }
  const config = MODES[opts.mode]
  const t0 = Date.now()
  const results = []
  try {
    const workDir = await tempDir('meshq-bench-work-')
    meta.distBuiltAt = await snapshotDist(join(ROOT, 'bench', 'results', `.dist-${process.pid}`))
    progress(`nodes run a copy of dist/ (built ${meta.distBuiltAt}), safe from rebuilds during the run`)
    let shared
    const labels = new Map()
    const ctx = {
      workDir,
      cpus: meta.cpus,
      parallel,
      /** A node's letter (A, B, …) in the cluster it was started in, or a short peer id. */
      label: node => node.label ?? labels.get(typeof node === 'string' ? node : node.id) ?? String(node.id ?? node).slice(-6),
      /** The shared cluster of `size` nodes (2 slots each, claim debug on), started on first use. */
      mesh: async size => {
        if (shared != null && shared.length === size && shared.every(n => n.alive())) return shared
        await ctx.disposeMesh()
        progress(`starting a ${size}-node mesh`)
        shared = ctx.labelNodes(await startCluster(size, { slots: 2, debug: 'meshq:claims,meshq:sched' }))
        return shared
      },
      /** Names a cluster's nodes A, B, C… (in tables and messages). */
      labelNodes: nodes => {
        nodes.forEach((node, i) => {
          node.label = String.fromCharCode(65 + i)
          labels.set(node.id, node.label)
        })
        return nodes
      },
      disposeMesh: async () => {
        if (shared == null) return
        const nodes = shared
        shared = undefined
        await disposeNodes(nodes)
      }
    }
    if (parallel == null) progress('GNU parallel: not installed (apt-get install parallel); its baseline is skipped')

    for (const [i, [key, title]] of SCENARIOS.entries()) {
      if (opts.only != null && !opts.only.includes(i + 1)) continue
      if (interrupted) break
      progress(`${i + 1}. ${title}`)
      const started = Date.now()
      let result
      try {
        result = { n: i + 1, key, title, config: config[key], ...await scenarios[key](config[key], ctx) }
      } catch (err) {
        if (interrupted) break
        const died = unexpectedExits()
        const error = (err.stack ?? String(err)) + died.map(d => `\n${d}`).join('')
        result = { n: i + 1, key, title, config: config[key], error: died.length > 0 ? `${err.message} (and ${died.length} node(s) died on their own, see below)\n${error}` : error }
        await ctx.disposeMesh().catch(() => {}) // the next scenario starts from a fresh mesh
      }
      result.seconds = Math.round((Date.now() - started) / 1000)
      results.push(result)
      console.log(scenarioText(result))
    }
    await ctx.disposeMesh()
  } finally {
    await cleanupAll()
  }
  if (interrupted) return

  meta.seconds = Math.round((Date.now() - t0) / 1000)
  meta.loadEnd = loadavg().map(l => l.toFixed(2)).join(' ')
  const report = { meta, scenarios: results }
  await mkdir(join(ROOT, 'bench', 'results'), { recursive: true })
  await writeFile(join(ROOT, 'bench', 'results', 'latest.json'), JSON.stringify(report, null, 2) + '\n')
  console.log(`\nwrote bench/results/latest.json (${meta.seconds} s in all)`)
  if (opts.docs) {
    await writeFile(join(ROOT, 'docs', 'benchmarks.md'), markdownReport(report))
    await writeFile(join(ROOT, 'docs', 'benchmarks.svg'), chartSvg(report))
    console.log('wrote docs/benchmarks.md and docs/benchmarks.svg')
  }
  const failed = results.filter(r => r.error != null)
  if (failed.length > 0) {
    for (const r of failed) console.error(`\nscenario ${r.n} (${r.title}) failed:\n${r.error}`)
    process.exitCode = 1
  }
}

main().catch(err => {
  console.error(`bench: ${err.message}`)
  process.exit(1)
})
