import { readFile, readdir, rename, stat, writeFile } from 'node:fs/promises'
import { execFileSync, spawn } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { ledgerDigest, readRuns } from './checker.mjs'

/**
 * The named fault scenarios. Each has `run(ctx)`, which starts the probe workload, injects its
 * faults and returns; the harness then heals everything, waits for every acknowledged job and
 * runs the checker. `ctx` is built in harness.mjs.
 */

/** How many rounds of a fault fit in the run's duration, at least one. */
const rounds = (ctx, perRoundMs) => Math.max(1, Math.floor(ctx.durationMs / perRoundMs))

/**
 * Submits one long probe and waits until it runs and every live node knows it runs (a holder
 * killed before its ledger reached anyone takes the job down with it until it restarts):
 * `{ id, holder, epoch }`.
 */
async function longJob (ctx, durationMs, extra) {
  const [id] = await ctx.workload.submit(ctx.pick(ctx.live()), 1, { durationMs, extra })
  if (id == null) throw new Error('the long job was refused')
  const holder = await ctx.holder(id)
  await ctx.waitFor(async () => (await Promise.all(ctx.live().map(n => n.json(['show', id])))).every(j => j.state === 'running'),
    { what: `every node to see ${id} running`, timeout: 30_000, interval: 500 })
  const job = await holder.json(['show', id])
  return { id, holder, epoch: Math.max(...job.attempts.map(a => a.epoch)) }
}

/** Processes whose environment says they belong to job `id` (as root, /proc/PID/environ is readable). */
async function processesOf (id) {
  const found = []
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    const env = await readFile(`/proc/${pid}/environ`, 'latin1').catch(() => '')
    if (env.split('\0').includes(`MESHQ_JOB_ID=${id}`)) found.push(Number(pid))
  }
  return found
}

/** Peak resident memory of a process in MiB. */
async function peakRssMib (pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  return Math.round(Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024)
}

/** Submits a plain (non-probe) job to `node`; returns its id. */
async function special (ctx, node, cmd) {
  const id = (await node.ok(['sub', '--', ...cmd])).trim()
  ctx.say(`  submitted ${id}: ${cmd.join(' ').slice(0, 80)}`)
  return id
}

/** The node that runs (or ran) job `id`, once the job is running. */
async function runningOn (ctx, id) {
  return await ctx.holder(id, 120_000)
}

/** Whether every node answers and none has exited. */
async function allAlive (ctx) {
  const answers = await Promise.all(ctx.nodes.map(async n => n.running && (await n.cli(['ls', '--limit', '1'])).code === 0))
  return answers.every(Boolean)
}

/** The probe runs of job `id` (begin marks, ends). */
async function runsOf (ctx, id) {
  return (await readRuns(ctx.workload)).filter(r => r.job === id).sort((a, b) => a.start - b.start)
}

/** A long job's holder is cut off by `cut(holder)`; the job must run elsewhere and the old run stop first. */
async function cutHolder (ctx, cut, what) {
  ctx.startWorkload({ rate: 2 })
  const takeovers = []
  const fenced = []
  for (let round = 0; round < rounds(ctx, 60_000); round++) {
    await ctx.sleep(2000)
    const { id, holder, epoch } = await longJob(ctx, 60_000, { ttr: '30s' })
    const at = Date.now()
    cut(holder)
    const others = ctx.live().filter(n => n !== holder)
    const rerun = await ctx.rerun(id, epoch, others[0])
    takeovers.push(Date.parse(rerun.startedAt) - at)
    const [first, ...later] = await runsOf(ctx, id)
    const gap = later.length > 0 ? Math.round(later[0].start - first.end) : undefined
    fenced.push(gap)
    ctx.say(`  ${holder.name} ${what} holding ${id}: rerun after ${takeovers.at(-1)} ms; old run ended ${gap ?? '?'} ms before the rerun started`)
    await ctx.heal()
  }
  ctx.figure('takeover (fault to rerun start, TTR 30 s)', stats(takeovers))
  ctx.expect(`the ${what} holder stopped its run before the rerun started`, fenced.every(g => g != null && g > 0), `gaps ${fenced.join(', ')} ms`)
}

/** Kills the holder of a long job and restarts it `when` ('at once' or 'after the rerun'). */
async function killHolder (ctx, when) {
  ctx.startWorkload({ rate: 3 })
  const failovers = []
  for (let round = 0; round < rounds(ctx, 25_000); round++) {
    await ctx.sleep(2000)
    const { id, holder, epoch } = await longJob(ctx, 20_000)
    const killedAt = Date.now()
    await holder.stop('SIGKILL')
    if (when === 'at once') await holder.start()
    const rerun = await ctx.rerun(id, epoch, ctx.live().find(n => n !== holder))
    failovers.push(Date.parse(rerun.startedAt) - killedAt)
    ctx.say(`  ${holder.name} killed holding ${id}; rerun after ${failovers.at(-1)} ms`)
    if (when === 'at once') continue
    await ctx.waitFor(async () => (await ctx.live()[0].json(['show', id])).state === 'done', { what: `${id} to finish`, timeout: 120_000, interval: 1000 })
    await holder.start()
  }
  ctx.figure('failover (kill to rerun start, TTR 3 s)', stats(failovers))
}

const stats = list => list.length === 0 ? 'none' : `min ${Math.min(...list)} ms, max ${Math.max(...list)} ms (${list.join(', ')})`

export const scenarios = [
  {
    name: 'kill-holder',
    about: 'SIGKILL of the node holding a long job (TTR 3 s); the job reruns elsewhere; the node restarts once the rerun is done',
    ttr: '3s',
    async run (ctx) { await killHolder(ctx, 'after the rerun') }
  },
  {
    name: 'restart-holder',
    about: 'SIGKILL of the node holding a long job (TTR 3 s), restarted at once, while the job reruns elsewhere',
    ttr: '3s',
    async run (ctx) { await killHolder(ctx, 'at once') }
  },
  {
    name: 'partition-majority-minority',
    about: 'a 3/2 split of the five nodes; jobs submitted on both sides: the majority runs its own, the minority none until healed',
    ttr: '5s',
    async run (ctx) {
      ctx.startWorkload({ rate: 3 })
      await ctx.sleep(3000)
      const order = ctx.nodes.map(n => n.index).sort(() => ctx.random() - 0.5)
      const minority = order.slice(0, Math.floor(ctx.nodes.length / 2))
      ctx.net.partition(minority)
      ctx.say(`  partitioned: minority ${minority.map(i => `n${i}`).join(', ')}`)
      const sides = [ctx.nodes.filter(n => minority.includes(n.index)), ctx.nodes.filter(n => !minority.includes(n.index))]
      // claims need a quorum of the members: the majority runs its jobs, the minority starts none
      const sideJobs = await Promise.all(sides.map(async side => await ctx.workload.submit(side[0], 4, { durationMs: 500 })))
      const majority = sides[1]
      await ctx.waitFor(async () => (await majority[majority.length - 1].json(['ls', '--all'])).filter(j => sideJobs[1].includes(j.id) && j.state === 'done').length === sideJobs[1].length,
        { what: 'the jobs of the majority to run during the partition', timeout: 90_000, interval: 1000 })
      ctx.expect('the majority ran its jobs during the partition', true, `after ${Date.now() - ctx.timeline.at(-1).t} ms`)
      await ctx.sleep(Math.max(0, ctx.durationMs - 10_000))
      await ctx.workload.stop()
      const started = (await sides[0][0].json(['ls', '--all'])).filter(j => sideJobs[0].includes(j.id) && j.attempts.some(a => a.startedAt != null))
      ctx.expect('the minority started none of its jobs during the partition', started.length === 0, started.map(j => j.id).join(' '))
      const others = (await sides[1][0].json(['ls', '--all'])).filter(j => sideJobs[0].includes(j.id))
      ctx.expect('the majority has not seen the minority\'s jobs before healing', others.length === 0)
    }
  },
  {
    name: 'lossy-network',
    about: '25 % frame loss and 200 ± 100 ms delay on every link while jobs run',
    network: 'switch',
    ttr: '10s',
    async run (ctx) {
      ctx.startWorkload({ rate: 2 })
      await ctx.sleep(2000)
      ctx.net.impair({ loss: 0.25, delayMs: 200, jitterMs: 100 })
      await ctx.sleep(ctx.durationMs)
      await ctx.workload.stop()
    }
  },
  {
    name: 'kill-during-submit',
    about: 'SIGKILL of a node while batches of submits to it are in flight; it restarts',
    ttr: '5s',
    async run (ctx) {
      ctx.startWorkload({ rate: 3 })
      for (let round = 0; round < rounds(ctx, 15_000); round++) {
        await ctx.sleep(3000)
        const victim = ctx.pick(ctx.live())
        const inflight = Array.from({ length: 4 }, async () => await ctx.workload.submit(victim, 10, { durationMs: 300 }))
        await ctx.sleep(30 + Math.floor(ctx.random() * 300))
        await victim.stop('SIGKILL')
        const ids = (await Promise.all(inflight)).flat()
        ctx.say(`  ${victim.name} killed with 40 submits in flight: ${ids.length} acknowledged`)
        await victim.start()
      }
    }
  },
  {
    name: 'pause-holder',
    about: 'SIGSTOP of the node holding a long job (TTR 4 s) for 2.5 TTR, then SIGCONT',
    ttr: '4s',
    async run (ctx) {
      ctx.startWorkload({ rate: 2 })
      const takeovers = []
      for (let round = 0; round < rounds(ctx, 30_000); round++) {
        await ctx.sleep(2000)
        const { id, holder, epoch } = await longJob(ctx, 30_000)
        const at = Date.now()
        holder.signal('SIGSTOP')
        holder.paused = true
        const rerun = await ctx.rerun(id, epoch)
        takeovers.push(Date.parse(rerun.startedAt) - at)
        await ctx.sleep(Math.max(0, at + 10_000 - Date.now()))
        holder.signal('SIGCONT')
        holder.paused = false
        ctx.say(`  ${holder.name} paused 10 s holding ${id}: rerun after ${takeovers.at(-1)} ms`)
      }
      ctx.figure('takeover (SIGSTOP to rerun start, TTR 4 s)', stats(takeovers))
    }
  },
  {
    name: 'cpu-starved',
    about: 'two busy loops per core beside the nodes, and SIGSTOP bursts of 1–3 s on random nodes, while jobs run (default TTR): no job runs twice',
    ttr: '30s',
    noDuplicates: true,
    async run (ctx) {
      const loops = Array.from({ length: 2 * availableParallelism() }, () => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }))
      const stopLoops = () => { for (const loop of loops) loop.kill('SIGKILL') }
      ctx.teardown(async () => { stopLoops() })
      ctx.startWorkload({ rate: 3 })
      let bursts = 0
      for (const end = Date.now() + ctx.durationMs; Date.now() < end; bursts++) {
        await ctx.sleep(1000 + Math.floor(ctx.random() * 2000))
        const victim = ctx.pick(ctx.live())
        victim.signal('SIGSTOP')
        victim.paused = true
        await ctx.sleep(1000 + Math.floor(ctx.random() * 2000))
        victim.signal('SIGCONT')
        victim.paused = false
      }
      await ctx.workload.stop()
      stopLoops()
      ctx.figure('SIGSTOP bursts of 1–3 s', String(bursts))
    }
  },
  {
    name: 'isolate-holder',
    about: 'the link of the node holding a long job (TTR 30 s) goes down; healed after the rerun',
    ttr: '4s',
    async run (ctx) { await cutHolder(ctx, holder => ctx.net.isolate(holder.index), 'isolated') }
  },
  {
    name: 'one-way-partition',
    about: 'the node holding a long job (TTR 30 s) stops receiving from the others (they still receive from it)',
    ttr: '4s',
    async run (ctx) { await cutHolder(ctx, holder => ctx.net.dropIncoming(holder.index), 'deaf') }
  },
  {
    name: 'disk-full',
    about: 'a node whose home is a 20 MB tmpfs fills up during submits and claims, then gets space back',
    ttr: '5s',
    async homeSetUp (ctx, i, home) {
      if (i !== 2) return
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', home])
      ctx.teardown(async () => { execFileSync('umount', ['-l', home]) })
    },
    async run (ctx) {
      const victim = ctx.nodes[1]
      ctx.startWorkload({ rate: 3 })
      await ctx.sleep(3000)
      // jobs every node knows, which become ready while the victim is full
      const elsewhere = await ctx.workload.submit(ctx.nodes[0], 6, { durationMs: 300, extra: { delay: '6s' } })
      await ctx.waitFor(async () => (await Promise.all(elsewhere.map(async id => (await victim.cli(['show', id])).code === 0))).every(Boolean),
        { what: `${victim.name} to know the delayed jobs`, timeout: 30_000, interval: 250 })
      const filler = join(victim.home, 'filler')
      try { execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M'], { stdio: 'ignore' }) } catch { /* ends with ENOSPC */ }
      ctx.say(`  ${victim.name}'s home is full`)
      const refusals = []
      for (let k = 0; k < 5; k++) {
        const ids = await ctx.workload.submit(victim, 3)
        if (ids.length === 0) refusals.push(ctx.workload.lastRefusal)
        await ctx.sleep(500)
      }
      ctx.expect('submits to the full node are refused with a clear message', refusals.length > 0 && refusals.every(r => /space|disk|storage|full/i.test(r)), refusals[0] ?? 'none refused')
      // nor may it hold up the others' jobs: it claims nothing while it cannot write
      const ranElsewhere = await ctx.waitFor(async () => {
        const jobs = new Map((await ctx.nodes[0].json(['ls', '--all'])).map(j => [j.id, j.state]))
        return elsewhere.every(id => jobs.get(id) === 'done')
      }, { what: 'the jobs submitted elsewhere to run', timeout: 30_000, interval: 500 }).catch(() => false)
      ctx.expect('jobs that became ready while the node was full ran within 30 s (it claims nothing it cannot start)', elsewhere.length === 6 && ranElsewhere)
      await ctx.sleep(Math.max(5000, ctx.durationMs / 2))
      ctx.expect('the full node stays up', await allAlive(ctx))
      await writeFile(filler, '')
      const after = await ctx.workload.submit(victim, 3)
      ctx.expect('submits are accepted again once space is back', after.length === 3, after.length === 3 ? '' : ctx.workload.lastRefusal)
      await ctx.workload.stop()
      const other = ctx.nodes[0]
      const caughtUp = await ctx.waitFor(async () => ledgerDigest(await victim.json(['ls', '--all'])) === ledgerDigest(await other.json(['ls', '--all'])),
        { what: `${victim.name}'s ledger to agree with ${other.name}'s`, timeout: 90_000, interval: 1000 }).catch(() => false)
      ctx.expect('the full node catches up with its peers once space is back, without a restart', caughtUp)
      // The failed writes left a torn record in LevelDB's log; what was acknowledged after it must
      // survive a crash. Restarted cut off from its peers, the node can only have it from its disk.
      await victim.stop('SIGKILL')
      ctx.net.isolate(victim.index)
      await victim.start()
      const kept = await Promise.all(after.map(async id => (await victim.cli(['show', id])).code === 0))
      ctx.expect('the jobs acknowledged after space came back survive a SIGKILL and a restart, from the node\'s own disk', after.length > 0 && kept.every(Boolean), `${kept.filter(Boolean).length} of ${after.length}`)
    }
  },
  {
    name: 'corrupt-store',
    about: 'a LevelDB file of a stopped node is corrupted: the node refuses to start; moved aside, it rejoins and re-syncs',
    ttr: '5s',
    async run (ctx) {
      ctx.startWorkload({ rate: 3 })
      await ctx.sleep(5000)
      const victim = ctx.nodes[2]
      const oldId = victim.id
      await victim.stop('SIGTERM')
      const ledger = join(victim.home, 'ledger')
      const files = await readdir(ledger)
      const target = files.find(f => f.endsWith('.ldb')) ?? files.find(f => f.endsWith('.log')) ?? files.find(f => f.startsWith('MANIFEST-'))
      const size = (await stat(join(ledger, target))).size
      const bytes = await readFile(join(ledger, target))
      bytes.fill(0x5a, Math.floor(size / 3), Math.floor(size / 3) + Math.min(4096, Math.ceil(size / 3)))
      await writeFile(join(ledger, target), bytes)
      ctx.say(`  corrupted ${target} (${size} bytes) of ${victim.name}`)
      await victim.start({ wait: false })
      const outcome = await Promise.race([victim.exited.then(code => ({ code })), victim.ready().then(() => ({ started: true }), () => ({ code: 'failed' }))])
      ctx.expect('the node refuses to start on the corrupted store, saying so', outcome.started !== true && /corrupt/i.test(victim.output), `${target}: ${outcome.started ? 'it started' : `exit ${outcome.code}: ${victim.output.split('\n').find(l => /corrupt/i.test(l)) ?? victim.output.slice(-300)}`}`)
      await victim.stop('SIGKILL')
      await rename(ledger, `${ledger}.corrupt`)
      const token = (await ctx.live()[0].ok(['invite'])).trim()
      await victim.start({ join: token })
      await ctx.live().find(n => n !== victim).ok(['evict', oldId]).catch(err => ctx.say(`  evict of the old identity failed: ${err.message}`))
      ctx.say(`  ${victim.name} rejoined as ${victim.id}`)
      await ctx.sleep(Math.max(0, ctx.durationMs - 10_000))
      await ctx.workload.stop()
    }
  },
  {
    name: 'big-output',
    about: 'a job writes 1 GiB without a newline: it completes, its output is capped, the node survives',
    size: 3,
    async run (ctx) {
      ctx.startWorkload({ rate: 1 })
      const id = await special(ctx, ctx.nodes[0], ['sh', '-c', 'head -c 1073741824 /dev/zero'])
      const started = Date.now()
      const node = await runningOn(ctx, id)
      const job = await ctx.waitFor(async () => { const j = await node.json(['show', id]); return j.state === 'running' ? undefined : j }, { what: `${id} to finish`, timeout: 600_000, interval: 1000 })
      const attempt = job.attempts.at(-1)
      const stdout = join(node.home, 'output', id, `${attempt.epoch}.stdout`)
      const kept = (await stat(stdout)).size
      ctx.figure('1 GiB job', `${job.state} in ${Date.now() - started} ms, ${attempt.stdoutBytes} bytes counted, ${kept} kept, node peak RSS ${await peakRssMib(node.pid)} MiB`)
      ctx.expect('the job is done with every byte counted and the output capped', job.state === 'done' && attempt.stdoutBytes === 1073741824 && attempt.truncated === true && kept <= 64 * 1024 * 1024 + 4096, `${attempt.stdoutBytes} bytes, ${kept} kept`)
      ctx.expect('every node survives', await allAlive(ctx))
      await ctx.workload.stop()
    }
  },
  {
    name: 'fork-bomb',
    about: 'a job forks 300 sleeping children; killing it kills all of them; the node survives',
    size: 3,
    async run (ctx) {
      ctx.startWorkload({ rate: 1 })
      const id = await special(ctx, ctx.nodes[0], ['sh', '-c', 'i=0; while [ $i -lt 300 ]; do sleep 600 & i=$((i+1)); done; wait'])
      await runningOn(ctx, id)
      const count = await ctx.waitFor(async () => { const n = (await processesOf(id)).length; return n > 300 ? n : undefined }, { what: 'the children to start', timeout: 60_000, interval: 500 })
      const at = Date.now()
      await ctx.nodes[1].ok(['kill', id])
      await ctx.waitFor(async () => (await processesOf(id)).length === 0, { what: `every process of ${id} to die`, timeout: 60_000, interval: 250 })
      ctx.figure('fork bomb', `${count} processes, all gone ${Date.now() - at} ms after the kill (asked on another node)`)
      ctx.expect('every node survives', await allAlive(ctx))
      await ctx.waitFor(async () => (await ctx.nodes[0].json(['show', id])).state === 'killed', { what: `${id} to be killed`, timeout: 30_000 })
      await ctx.workload.stop()
    }
  },
  {
    name: 'ignores-sigterm',
    about: 'a killed job that ignores SIGTERM dies by SIGKILL after the grace (--kill-grace 2s)',
    size: 3,
    nodeArgs: ['--kill-grace', '2s'],
    async run (ctx) {
      ctx.startWorkload({ rate: 1 })
      const id = await special(ctx, ctx.nodes[0], ['sh', '-c', 'trap "" TERM; sleep 600 & wait; sleep 600'])
      await runningOn(ctx, id)
      await ctx.waitFor(async () => (await processesOf(id)).length >= 2, { what: 'the job to start its child', timeout: 30_000 })
      const at = Date.now()
      await ctx.nodes[2].ok(['kill', id])
      await ctx.waitFor(async () => (await processesOf(id)).length === 0, { what: `every process of ${id} to die`, timeout: 60_000, interval: 100 })
      const took = Date.now() - at
      ctx.figure('SIGTERM ignored', `processes gone ${took} ms after the kill`)
      ctx.expect('the job outlives SIGTERM but not the grace', took >= 1500 && took < 15_000, `${took} ms`)
      ctx.expect('every node survives', await allAlive(ctx))
      await ctx.workload.stop()
    }
  },
  {
    name: 'churn',
    about: 'one node restarts every 3-6 s (SIGKILL or SIGTERM at random) while jobs run',
    ttr: '3s',
    async run (ctx) {
      ctx.startWorkload({ rate: 3 })
      const victim = ctx.pick(ctx.nodes)
      const end = Date.now() + ctx.durationMs
      let restarts = 0
      while (Date.now() < end) {
        await ctx.sleep(3000 + Math.floor(ctx.random() * 3000))
        await victim.stop(ctx.random() < 0.5 ? 'SIGKILL' : 'SIGTERM')
        await victim.start()
        restarts++
      }
      ctx.figure('restarts', `${restarts} of ${victim.name}`)
      await ctx.workload.stop()
    }
  },
  {
    name: 'hostile-member',
    about: 'an admitted member sends malformed, oversized, forged and replayed sync and gossip messages while jobs run',
    async run (ctx) {
      const { hostileMember } = await import('./hostile.mjs')
      const ip = ctx.net.attachHost()
      const attacker = await hostileMember((await ctx.nodes[0].ok(['invite'])).trim(), ip)
      ctx.teardown(async () => { await attacker.stop() })
      ctx.startWorkload({ rate: 3 })
      const end = Date.now() + ctx.durationMs
      let sent = 0
      while (Date.now() < end) {
        sent += await attacker.volley(ctx.nodes.map(n => `${ctx.net.listen(n.index)}/p2p/${n.id}`), ctx.nodes[1].id)
        await ctx.sleep(1000)
      }
      ctx.figure('hostile messages sent', sent)
      ctx.expect('every node survives', await allAlive(ctx))
      await ctx.workload.stop()
      await attacker.stop()
      await ctx.nodes[0].ok(['evict', attacker.id])
    }
  },
  {
    name: 'clock-offset',
    about: 'n2\'s wall clock is 10 min ahead and n3\'s 10 min behind (MESHQ_CLOCK_OFFSET_MS); a holder is killed',
    ttr: '3s',
    nodeEnv: i => ({ 2: { MESHQ_CLOCK_OFFSET_MS: '600000' }, 3: { MESHQ_CLOCK_OFFSET_MS: '-600000' } })[i] ?? {},
    async run (ctx) {
      ctx.startWorkload({ rate: 3 })
      await ctx.sleep(3000)
      const { id, holder, epoch } = await longJob(ctx, 20_000)
      await holder.stop('SIGKILL')
      const at = Date.now()
      const rerun = await ctx.rerun(id, epoch)
      ctx.figure('failover with skewed clocks', `${holder.name} killed; rerun on ${ctx.nodes.find(n => n.id === rerun.node)?.name} after ${Date.parse(rerun.startedAt) - at} ms by that node's clock`)
      await holder.start()
      await ctx.sleep(Math.max(0, ctx.durationMs - 10_000))
      await ctx.workload.stop()
    }
  }
]

export const scenarioNames = () => scenarios.map(s => s.name)
