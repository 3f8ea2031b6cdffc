/**
 * Runs one fault scenario: a network of namespaces, a cluster of nodes in it, the probe workload,
 * the scenario's faults, healing, the wait for every acknowledged job, and the checker.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Network, freeRunId } from './net.mjs'
import { allUp, startCluster, waitFor } from './cluster.mjs'
import { Workload, seededRandom } from './workload.mjs'
import { check, ledgerDigest, readRuns } from './checker.mjs'

/** Runs being set up or torn down, so that an interrupted suite can still clean up. */
export const active = new Set()

function hashName (name) {
  let h = 2166136261
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 16777619)
  return h >>> 0
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/**
 * @param {object} scenario from scenarios.mjs
 * @param {{ seed: number, durationMs: number, size?: number, settleMs?: number, keep?: boolean, say?: (line: string) => void }} options
 */
export async function runScenario (scenario, options) {
  const say = options.say ?? (() => {})
  const random = seededRandom(options.seed ^ hashName(scenario.name))
  const size = scenario.size ?? options.size ?? 5
  const dir = await mkdtemp(join(tmpdir(), `meshq-faults-${scenario.name}-`))
  const net = new Network({ runId: freeRunId(Math.random), size, kind: scenario.network ?? 'bridge', seed: options.seed })
  const teardowns = []
  let nodes = []
  let remove = false
  // nodes first (their jobs die with them), then what the scenario set up, then the network
  const run = {
    cleanup: async () => {
      for (const n of nodes) { if (n.paused) n.signal('SIGCONT'); await n.stop('SIGKILL').catch(() => {}) }
      for (const t of teardowns.splice(0).reverse()) await t().catch(() => {})
      net.down()
      if (remove) await rm(dir, { recursive: true, force: true })
    }
  }
  active.add(run)
  const started = Date.now()
  const timeline = [{ t: 0, cut: [] }]
  const checks = []
  const figures = {}
  let workload
  try {
    await net.up()
    const work = join(dir, 'work')
    await mkdir(join(work, 'runs'), { recursive: true })
    workload = new Workload({ dir: work, random, ttr: scenario.ttr ?? '5s' })
    const homes = join(dir, 'homes')
    const ctx = {
      name: scenario.name, net, random, dir, homes, durationMs: options.durationMs, seed: options.seed, workload, timeline, say,
      get nodes () { return nodes },
      sleep,
      waitFor,
      pick: list => list[Math.floor(random() * list.length)],
      live: () => nodes.filter(n => n.running && !n.paused),
      figure: (name, value) => { figures[name] = value; say(`  ${name}: ${value}`) },
      expect: (name, ok, detail = '') => { checks.push({ name, ok: !!ok, detail }); say(`  ${ok ? 'ok' : 'FAILED'}: ${name}${detail !== '' ? ` (${detail})` : ''}`) },
      teardown: fn => { teardowns.push(fn) },
      startWorkload: (opts = {}) => workload.start({ nodes, pick: () => nodes.filter(n => n.running && !n.paused), ...opts }),
      /** Waits until job `id` runs and returns the node running it. */
      holder: async (id, timeout = 60_000) => await waitFor(async () => {
        const job = await ctx.live()[0].json(['show', id])
        return job.state === 'running' ? nodes.find(n => n.id === job.node) : undefined
      }, { what: `job ${id} to start`, timeout }),
      /** Waits until job `id` has an attempt above `epoch` that started; returns it. */
      rerun: async (id, epoch, from, timeout = 120_000) => {
        let finished = false
        const attempt = await waitFor(async () => {
          const job = await (from ?? ctx.live()[0]).json(['show', id])
          finished = job.state === 'done'
          return job.attempts.find(a => a.epoch > epoch && a.startedAt != null) ?? finished
        }, { what: `job ${id} to run again`, timeout })
        if (attempt === true) throw new Error(`job ${id} finished before the fault took effect: the machine is too slow for this job length`)
        return attempt
      },
      cut: () => { timeline.push({ t: Date.now(), cut: [...net.cut] }) },
      /** Undoes every network fault, restarts stopped nodes, and waits until all see each other. */
      heal: async () => {
        net.heal()
        for (const n of nodes) if (n.paused) { n.signal('SIGCONT'); n.paused = false }
        await allUp(nodes.filter(n => n.running), 180_000)
        timeline.push({ t: Date.now(), cut: [] })
      }
    }
    net.onCut(cut => { if (cut.length > 0) timeline.push({ t: Date.now(), cut }) })
    say(`${scenario.name}: ${size} nodes on 10.77.${net.runId}.0/24 (${net.kind}), seed ${options.seed}, dir ${dir}`)
    nodes = await startCluster({ net, dir, slots: scenario.slots ?? 2, nodeArgs: scenario.nodeArgs, nodeEnv: scenario.nodeEnv ?? (() => ({})), homeOf: i => join(homes, `n${i}`), homeSetUp: scenario.homeSetUp?.bind(null, ctx) })
    say(`  cluster up in ${Date.now() - started} ms`)

    await scenario.run(ctx)
    if (!workload.stopped) await workload.stop()
    const healStart = Date.now()
    await ctx.heal()
    const result = await settle({ nodes, workload, timeline, timeoutMs: options.settleMs ?? 240_000 })
    figures.settleMs = Date.now() - healStart
    const verdict = { scenario: scenario.name, seed: options.seed, nodes: size, elapsedMs: Date.now() - started, figures, checks, ...result }
    verdict.failures = [...result.failures, ...checks.filter(c => !c.ok).map(c => `${c.name}${c.detail !== '' ? ` (${c.detail})` : ''}`)]
    // where no node dies and no link is cut, a completed run is never run again
    if (scenario.noDuplicates === true && result.duplicateRuns > 0) verdict.failures.push(`${result.duplicateRuns} jobs ran to completion twice`)
    verdict.ok = verdict.failures.length === 0
    verdict.dir = dir
    remove = verdict.ok && options.keep !== true
    return verdict
  } catch (err) {
    return { scenario: scenario.name, seed: options.seed, ok: false, dir, elapsedMs: Date.now() - started, figures, checks, failures: [`harness error: ${err.message}`] }
  } finally {
    await run.cleanup()
    active.delete(run)
  }
}

/**
 * Waits until every acknowledged job has a completed run and every node's ledger has the same
 * facts with all of them done, then checks. On timeout it checks what there is.
 */
async function settle ({ nodes, workload, timeline, timeoutMs }) {
  const live = nodes.filter(n => n.running)
  const snapshot = async () => {
    const runs = await readRuns(workload)
    const ledgers = Object.fromEntries(await Promise.all(live.map(async n => [n.name, await n.json(['ls', '--all'])])))
    return { runs, ledgers }
  }
  let last
  await waitFor(async () => {
    last = await snapshot()
    const done = new Set(last.runs.filter(r => r.completed).map(r => r.job))
    const everyJobRan = [...workload.acknowledged.values()].every(id => done.has(id))
    const digests = new Set(Object.values(last.ledgers).map(ledgerDigest))
    const allDone = Object.values(last.ledgers).every(jobs => jobs.every(j => j.state === 'done' || !workload.isProbe(j)))
    return everyJobRan && digests.size === 1 && allDone
  }, { what: 'every acknowledged job to complete and the ledgers to agree', timeout: timeoutMs, interval: 2000 }).catch(() => {})
  last = await snapshot().catch(() => last)
  const verdict = check({ workload, runs: last.runs, timeline, ledgers: last.ledgers })
  // what the ledger says about lost jobs, for the report
  const name = peer => nodes.find(n => n.id === peer)?.name ?? peer
  verdict.lostDetails = await Promise.all(verdict.lostJobs.slice(0, 5).map(async id => {
    const job = await live[0].json(['show', id]).catch(err => ({ state: `unknown: ${err.message}`, attempts: [] }))
    return { id, state: job.state, reason: job.reason, attempts: job.attempts.map(a => `epoch ${a.epoch} on ${name(a.node)}: ${a.exitCode ?? ''}${a.failReason ?? ''}${a.endedAt == null ? ' (open)' : ''}`) }
  }))
  return verdict
}
