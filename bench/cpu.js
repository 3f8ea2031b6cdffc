#!/usr/bin/env node
/**
 * CPU per job: `node bench/cpu.js [--nodes N] [--jobs N] [--slots N] [--prof DIR]`.
 *
 * Wall-clock throughput on a shared 2-core machine moves with whatever else runs; the CPU time a
 * node process spends per job does not (much). This starts N real nodes, runs `--jobs` `true` jobs
 * submitted as one batch on the first, and prints each node's user+system CPU ms per job (from
 * /proc/PID/stat, sampled before the submit and after the last job is done everywhere), the jobs'
 * own CPU excluded (it is charged to the children), and the same for each node's spawner process. With `--prof DIR` the nodes run with
 * `--cpu-prof` and write their profiles to DIR when they exit.
 */
import { parseArgs } from 'node:util'
import { cleanupAll, startCluster, submit, stop, watchEvents, untilAllDone } from './lib/nodes.js'
import { cpuMs, now, spawnerPid } from './lib/util.js'

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1' },
    jobs: { type: 'string', default: '1000' },
    slots: { type: 'string', default: '2' },
    prof: { type: 'string' }
  }
})
const size = Number(values.nodes)
const n = Number(values.jobs)
if (values.prof != null) process.env.NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${values.prof}`


let nodes = []
try {
  nodes = await startCluster(size, { slots: Number(values.slots) })
  delete process.env.NODE_OPTIONS
  const watches = await Promise.all(nodes.map(watchEvents))
  // the spawner starts with the node: its CPU is the node's per-job cost too
  const spawners = await Promise.all(nodes.map(node => spawnerPid(node.pid)))
  const processCpu = async () => await Promise.all(nodes.map(async (node, i) => ({
    node: await cpuMs(node.pid), spawner: spawners[i] === undefined ? 0 : await cpuMs(spawners[i])
  })))
  const before = await processCpu()
  const t0 = now()
  const jobs = await submit(nodes[0], Array.from({ length: n }, () => ({ cmd: ['true'], cwd: '/tmp', group: 'cpu' })))
  const ids = jobs.map(j => j.id)
  await Promise.all(watches.map(watch => untilAllDone(watch, ids, { what: `${n} true jobs`, timeout: 600_000 })))
  const wallMs = now() - t0
  const after = await processCpu()
  const perNode = nodes.map((node, i) => (after[i].node - before[i].node) / n)
  const perSpawner = nodes.map((node, i) => (after[i].spawner - before[i].spawner) / n)
  const ran = new Map()
  for (const id of ids) {
    const at = watches[0].jobs.get(id).job.node
    ran.set(at, (ran.get(at) ?? 0) + 1)
  }
  const sum = list => list.reduce((a, b) => a + b, 0)
  const perProcess = nodes.map((node, i) => `${String.fromCharCode(65 + i)} ${perNode[i].toFixed(2)} + spawner ${perSpawner[i].toFixed(2)} (ran ${ran.get(node.id) ?? 0})`)
  console.log(`${size} node(s) × ${values.slots} slots, ${n} true jobs: ${(n * 1000 / wallMs).toFixed(1)} jobs/s wall; CPU ms per job: ${perProcess.join(', ')}; all nodes ${sum(perNode).toFixed(2)} + spawners ${sum(perSpawner).toFixed(2)}`)
  for (const watch of watches) watch.close()
  for (const node of nodes) await stop(node, { signal: 'SIGINT', timeout: 30_000 })
} finally {
  await cleanupAll()
}
