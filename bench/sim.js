#!/usr/bin/env node
/**
 * `npm run sim`: many nodes in one process, on a fake clock, running meshq's real claim protocol
 * (`Claims` from dist/) over an in-memory gossip bus with delay, jitter and loss, with node deaths
 * and event-loop stalls. Each node runs a small model of the scheduler: when it has a free slot it
 * claims the ready jobs the real `Lookahead` picks (those it ranks best for among the first few it
 * may claim, in submit order), runs them for a while, fences itself as the real
 * scheduler does, and records starts and ends in a ledger every node sees after a sync delay.
 *
 * Reports per node count: duplicate runs (must be 0), overlapping runs, claim conflicts, gossip
 * batches and entries per job, dispatch latency and the time until every job is done and every
 * view agrees. Writes bench/results/sim.json; `-- --write-docs` also rewrites the table in
 * docs/scale.md.
 *
 *   npm run sim [-- --nodes 10,100,1000] [--seed 1] [--sync-ms 100] [--job-ms 2000] [--loss 0.01] [--jitter-ms 30] [--write-docs]
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { FakeClock } from '../dist/clock.js'
import { BATCH_INTERVAL_MS, Claims, claimRank } from '../dist/sched/claims.js'
import { mustFence } from '../dist/sched/scheduler/fence.js'
import { Lookahead, lookaheadWidth } from '../dist/sched/scheduler/lookahead.js'
import { seededRandom } from '../test/faults/workload.mjs'

const ROOT = new URL('..', import.meta.url).pathname
const DEFAULTS = { slots: 2, ttrMs: 30_000, jobMs: 2000, windowMs: 100, delayMs: 20, jitterMs: 30, loss: 0.01, syncDelayMs: 100, tickMs: BATCH_INTERVAL_MS }

/** Events on the fake clock, in time order: message deliveries, ledger updates, job ends. */
class Agenda {
  constructor () { this.slots = new Map() }
  at (time, fn) {
    const slot = Math.ceil(time / 5) * 5
    const list = this.slots.get(slot)
    if (list == null) this.slots.set(slot, [fn])
    else list.push(fn)
  }

  due (now) {
    const out = []
    for (const [slot, list] of this.slots) {
      if (slot > now) continue
      this.slots.delete(slot)
      out.push(...list)
    }
    return out
  }
}

function percentile (sorted, p) {
  return sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

/** One run with `n` nodes and `jobs` jobs, all ready at the start. */
async function simulate ({ n, jobs: jobCount, deaths, stalls, seed, ...rest }) {
  const o = { ...DEFAULTS, ...rest }
  const rnd = seededRandom(seed)
  const clock = new FakeClock()
  const agenda = new Agenda()
  const names = Array.from({ length: n }, (_, i) => `p${String(i).padStart(4, '0')}`)
  const jobs = Array.from({ length: jobCount }, (_, i) => `simjob-${i + 1}`)
  // rendezvous order of the nodes for each job, computed once
  const order = new Map(jobs.map(job => [job, [...names].sort((a, b) => claimRank(job, a) < claimRank(job, b) ? -1 : 1)]))
  const nodes = new Map()
  const runs = new Map(jobs.map(job => [job, []]))
  const firstStart = new Map()
  const stats = { lost: 0, fenced: 0, preempted: 0, batches: 0, entries: 0, votes: 0 }
  let live = names

  const publishFrom = from => batch => {
    stats.batches++
    stats.votes += batch.votes.length
    stats.entries += batch.claims.length + batch.votes.length + batch.renews.length + batch.releases.length + batch.withdraws.length + batch.refusals.length + batch.acks.length
    const now = clock.monotonic()
    // four delay classes per batch: every recipient gets one, or loses the batch. A link delivers in
    // order, as gossipsub's one stream per peer does: a batch never overtakes an earlier one on it
    // (the receiver would drop it as a replay)
    const groups = new Map()
    for (const to of live) {
      if (to === from || rnd() < o.loss) continue
      const link = `${from}>${to}`
      const at = Math.max(now + o.delayMs + (Math.floor(rnd() * 4) * o.jitterMs) / 3, linkClear.get(link) ?? 0)
      linkClear.set(link, at)
      const group = groups.get(at)
      if (group == null) groups.set(at, [to])
      else group.push(to)
    }
    for (const [at, group] of groups) agenda.at(at, () => { for (const to of group) nodes.get(to)?.receive(batch) })
  }
  /** Per link, when its last batch is delivered. */
  const linkClear = new Map()

  for (const self of names) {
    const node = {
      self,
      dead: false,
      stalledUntil: 0,
      inbox: [],
      handler: undefined,
      view: new Map(), // job -> { epoch, done, attempts: Map(epoch -> { node, ended }) }
      runs: new Map(), // job -> { epoch, run }
      claiming: 0,
      readySince: new Map(),
      pending: [...jobs], // not yet seen done, in submit order
      receive (batch) {
        if (node.dead) return
        if (clock.monotonic() < node.stalledUntil) node.inbox.push(batch)
        else node.handler(batch)
      }
    }
    node.claims = new Claims({
      self,
      clock,
      transport: { publish: publishFrom(self), subscribe: handler => { node.handler = handler } },
      windowMs: o.windowMs,
      peers: () => live === names ? othersOf(self) : live.filter(p => p !== self).map(load),
      members: () => n,
      othersSilentFor: () => false,
      onExpired: () => {},
      onPreempted: job => { stats.preempted++; stop(node, job) },
      claimable: (job, epoch) => { const v = node.view.get(job); return v == null || (!v.done && v.epoch < epoch) },
      knownEpoch: job => node.view.get(job)?.epoch ?? 0,
      ended: (job, epoch) => { const v = node.view.get(job); return v?.done === true || v?.attempts.get(epoch)?.ended === true },
      random: rnd,
      quietMs: 0
    })
    nodes.set(self, node)
  }
  const loads = new Map(names.map(p => [p, { peer: p, slots: o.slots, running: 0, draining: false, tags: [] }]))
  const load = p => loads.get(p)
  const others = new Map()
  const othersOf = self => { let list = others.get(self); if (list == null) others.set(self, list = names.filter(p => p !== self).map(load)); return list }

  /**
   * Tells every live node an attempt's record: started, or ended (done if it succeeded). The node
   * that ran it has it at once (it wrote it), the others after the sync delay.
   */
  function record (job, epoch, node, ended, done) {
    for (const to of live) {
      agenda.at(clock.monotonic() + (to === node ? 0 : o.syncDelayMs * (0.5 + rnd())), () => {
        const view = nodes.get(to).view
        const v = view.get(job) ?? { epoch: 0, done: false, attempts: new Map() }
        v.epoch = Math.max(v.epoch, epoch)
        v.done ||= done
        v.attempts.set(epoch, { node, ended: ended || v.attempts.get(epoch)?.ended === true })
        view.set(job, v)
      })
    }
  }

  /** Whether a node's view has the job running: an open attempt whose lease is alive there (as deriveJob asks). */
  function running (node, job, v) {
    for (const [epoch, a] of v?.attempts ?? []) {
      if (!a.ended && node.claims.alive({ job, epoch, node: a.node }, o.ttrMs)) return true
    }
    return false
  }

  function stop (node, job, at = clock.monotonic()) {
    const mine = node.runs.get(job)
    if (mine?.run == null || mine.run.end != null) return
    mine.run.end = at
    mine.run.completed = false
    node.runs.delete(job)
    node.claims.release(job)
    record(job, mine.epoch, node.self, true, false)
  }

  async function launch (node, job) {
    const epoch = node.claims.nextEpoch(job, node.view.get(job)?.epoch ?? 0)
    node.claiming++
    node.runs.set(job, { epoch })
    const won = await node.claims.claim(job, epoch, o.ttrMs)
    node.claiming--
    if (!won || node.dead || node.view.get(job)?.done === true) {
      if (!won) stats.lost++
      node.runs.delete(job)
      node.claims.release(job, { recorded: false })
      return
    }
    const run = { node: node.self, epoch, start: clock.monotonic() }
    node.runs.get(job).run = run
    runs.get(job).push(run)
    if (!firstStart.has(job)) firstStart.set(job, run.start)
    record(job, epoch, node.self, false, false)
    agenda.at(run.start + o.jobMs * (0.5 + rnd()), () => {
      if (run.end != null) return
      run.end = clock.monotonic()
      run.completed = true
      node.runs.delete(job)
      record(job, epoch, node.self, true, true)
      node.claims.release(job)
    })
  }

  /** Each job's rendezvous rank of every live node (0 claims first), as `Claims.ranking` computes it. */
  const ranks = new Map()
  function rankJobs () {
    for (const job of jobs) {
      const rank = new Map()
      for (const p of order.get(job)) if (!nodes.get(p).dead) rank.set(p, rank.size)
      ranks.set(job, rank)
    }
  }

  /**
   * The scheduler's pass (`Pass` in src/sched/scheduler/pass.ts): walks the jobs in submit order,
   * passes over those done, running, claimed elsewhere or still within this node's rank delay, and
   * claims those the real `Lookahead` picks among the first it may claim.
   */
  function pass (node) {
    const now = clock.monotonic()
    const free = o.slots - node.runs.size
    if (free <= 0) return
    const lookahead = new Lookahead(lookaheadWidth(live.length, free))
    const list = node.pending
    let kept = 0
    let read = 0
    for (; read < list.length; read++) {
      const job = list[read]
      const v = node.view.get(job)
      if (v?.done === true) continue // done jobs leave the list
      list[kept++] = job
      if (node.runs.has(job) || node.claims.bars(job, v?.epoch ?? 0) || running(node, job, v)) {
        node.readySince.delete(job) // as Scheduler.onJobChange: the rank delay runs from when it is ready again
        continue
      }
      const rank = ranks.get(job).get(node.self)
      let since = node.readySince.get(job)
      if (since == null) node.readySince.set(job, since = now)
      if (now < Math.max(since + rank * o.windowMs, node.claims.retryAt(job))) continue
      if (!lookahead.offer({ id: job, pri: 0, cores: 1 }, rank)) { read++; break }
    }
    if (kept < read) list.splice(kept, read - kept)
    for (const { id } of lookahead.picks(free)) void launch(node, id)
  }

  /** Self-fencing, with the scheduler's decision: a lease that is about to go unconfirmed stops its run. */
  function fence (node) {
    for (const [job, mine] of node.runs) {
      if (mine.run == null) continue
      if (!mustFence(node.claims.confirmedFor(job), o.ttrMs)) continue
      stats.fenced++
      stop(node, job)
    }
  }

  const deathAt = Array.from({ length: deaths }, () => 1000 + Math.floor(rnd() * 4000))
  const stallAt = Array.from({ length: stalls }, () => ({ at: 500 + Math.floor(rnd() * 5000), ms: 1000 + Math.floor(rnd() * 4000) }))
  for (const at of deathAt) {
    agenda.at(at, () => {
      const victim = nodes.get(live[Math.floor(rnd() * live.length)])
      victim.dead = true
      for (const job of [...victim.runs.keys()]) {
        const run = victim.runs.get(job).run
        if (run != null && run.end == null) { run.end = clock.monotonic(); run.completed = false }
      }
      victim.runs.clear()
      live = live.filter(p => p !== victim.self)
      rankJobs()
    })
  }
  for (const { at, ms } of stallAt) {
    agenda.at(at, () => {
      const victim = nodes.get(live[Math.floor(rnd() * live.length)])
      victim.stalledUntil = clock.monotonic() + ms
      // the watchdog fences a node stalled past TTR/2
      if (ms > o.ttrMs / 2) for (const job of [...victim.runs.keys()]) stop(victim, job, clock.monotonic() + o.ttrMs / 2)
    })
  }

  rankJobs()
  const started = performance.now()
  let doneAt
  const step = 5
  for (let t = 0; t < 600_000; t += step) {
    clock.advance(step)
    for (const fn of agenda.due(clock.monotonic())) fn()
    if (t % o.tickMs === 0) {
      for (const self of live) {
        const node = nodes.get(self)
        if (clock.monotonic() < node.stalledUntil) continue
        for (const batch of node.inbox.splice(0)) node.handler(batch)
        node.claims.tick()
        fence(node)
        pass(node)
      }
    }
    await new Promise(resolve => setImmediate(resolve))
    if (t % 100 === 0 && doneAt == null && jobs.every(job => runs.get(job).some(r => r.completed))) doneAt = clock.monotonic()
    if (doneAt != null && live.every(p => jobs.every(job => nodes.get(p).view.get(job)?.done === true))) break
  }
  const converged = clock.monotonic()


  let duplicates = 0
  let overlaps = 0
  for (const list of runs.values()) {
    if (list.filter(r => r.completed).length > 1) duplicates++
    for (let i = 0; i < list.length; i++) {
      for (let k = i + 1; k < list.length; k++) {
        const [a, b] = [list[i], list[k]]
        if (a.start < (b.end ?? Infinity) && b.start < (a.end ?? Infinity)) overlaps++
      }
    }
  }
  const latencies = [...firstStart.values()].sort((a, b) => a - b)

  return {
    nodes: n,
    jobs: jobCount,
    deaths,
    stalls,
    duplicates,
    overlaps,
    notDone: jobs.filter(job => !runs.get(job).some(r => r.completed)).length,
    lostClaims: stats.lost,
    fenced: stats.fenced,
    preempted: stats.preempted,
    batchesPerJob: Math.round(stats.batches / jobCount * 10) / 10,
    entriesPerJob: Math.round(stats.entries / jobCount),
    votesPerJob: Math.round(stats.votes / jobCount * 10) / 10,
    dispatchP50Ms: percentile(latencies, 0.5),
    dispatchP99Ms: percentile(latencies, 0.99),
    allDoneMs: doneAt ?? null,
    convergedMs: converged,
    simSeconds: Math.round((performance.now() - started) / 100) / 10
  }
}

const COLUMNS = [
  ['nodes', 'nodes'], ['jobs', 'jobs'], ['deaths', 'deaths'], ['stalls', 'stalls 1–5 s'], ['duplicates', 'duplicate runs'], ['overlaps', 'overlapping runs'],
  ['notDone', 'not done'], ['lostClaims', 'claim conflicts (lost claims)'], ['batchesPerJob', 'gossip batches per job'], ['votesPerJob', 'votes per job'],
  ['entriesPerJob', 'entries per job'], ['dispatchP50Ms', 'dispatch p50 ms'], ['dispatchP99Ms', 'dispatch p99 ms'], ['allDoneMs', 'all done ms'],
  ['convergedMs', 'views agree ms'], ['tickMs', 'tick ms'], ['simSeconds', 'sim wall s']
]

function table (rows) {
  const head = `| ${COLUMNS.map(c => c[1]).join(' | ')} |\n| ${COLUMNS.map(() => '---:').join(' | ')} |`
  return [head, ...rows.map(r => `| ${COLUMNS.map(([k]) => r[k] ?? '–').join(' | ')} |`)].join('\n')
}

async function main () {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '10,100,1000' },
      seed: { type: 'string', default: '1' },
      'sync-ms': { type: 'string', default: String(DEFAULTS.syncDelayMs) },
      'job-ms': { type: 'string', default: String(DEFAULTS.jobMs) },
      'loss': { type: 'string', default: String(DEFAULTS.loss) },
      'jitter-ms': { type: 'string', default: String(DEFAULTS.jitterMs) },
      'write-docs': { type: 'boolean', default: false }
    }
  })
  const sizes = values.nodes.split(',').map(Number)
  if (!sizes.every(s => Number.isInteger(s) && s >= 3)) throw new Error(`bad --nodes '${values.nodes}' (whole numbers >= 3)`)
  const seed = Number(values.seed)
  const options = { syncDelayMs: Number(values['sync-ms']), jobMs: Number(values['job-ms']), loss: Number(values.loss), jitterMs: Number(values['jitter-ms']) }
  if (!Object.values(options).every(v => Number.isFinite(v) && v >= 0) || options.loss >= 1) {
    throw new Error('bad --sync-ms, --job-ms, --jitter-ms or --loss (--loss is a fraction below 1)')
  }
  const o = { ...DEFAULTS, ...options }
  const rows = []
  for (const n of sizes) {
    // large meshes: fewer jobs and coarser ticks, so that a run stays within minutes (every
    // node hears every vote: the work grows with the square of the node count)
    const big = n >= 1000
    const jobs = big ? 20 : Math.min(1000, 10 * n)
    const tickMs = big ? 4 * BATCH_INTERVAL_MS : BATCH_INTERVAL_MS
    const tenth = Math.max(1, Math.floor(n / 10))
    for (const [deaths, stalls] of [[0, 0], [tenth, tenth]]) {
      process.stderr.write(`sim: ${n} nodes, ${jobs} jobs, ${deaths} deaths, ${stalls} stalls…\n`)
      rows.push({ ...await simulate({ ...options, n, jobs, deaths, stalls, seed, tickMs }), tickMs })
      process.stderr.write(`  ${JSON.stringify(rows.at(-1))}\n`)
    }
  }
  const text = table(rows)
  console.log(text)
  const settings = `${o.slots} slots per node, TTR ${o.ttrMs / 1000} s, jobs of ${o.jobMs / 2000}–${o.jobMs * 1.5 / 1000} s, gossip delay ${o.delayMs}–${o.delayMs + o.jitterMs} ms, ${o.loss * 100} % loss per message and recipient, ledger sync ${o.syncDelayMs / 2}–${o.syncDelayMs * 1.5} ms, seed ${seed}`
  await mkdir(`${ROOT}bench/results`, { recursive: true })
  await writeFile(`${ROOT}bench/results/sim.json`, JSON.stringify({ date: new Date().toISOString(), settings, rows }, null, 2) + '\n')
  if (values['write-docs']) {
    const path = `${ROOT}docs/scale.md`
    const doc = await readFile(path, 'utf8')
    const begin = '<!-- sim:begin -->'
    const end = '<!-- sim:end -->'
    const generated = `${begin}\n\`npm run sim\`, ${new Date().toISOString().slice(0, 10)}: ${settings}.\n\n${text}\n${end}`
    await writeFile(path, doc.replace(new RegExp(`${begin}[\\s\\S]*${end}`), generated))
  }
  if (rows.some(r => r.duplicates > 0 || r.overlaps > 0)) process.exitCode = 1
}

main().catch(err => {
  console.error(`sim: ${err.stack ?? err.message}`)
  process.exit(1)
})
