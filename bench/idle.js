#!/usr/bin/env node
/**
 * What idle nodes cost: `node bench/idle.js [--nodes N] [--seconds S] [--prof DIR]`.
 *
 * Starts N real nodes (a mesh when N > 1), waits until they see each other, lets them settle for
 * 10 s, then samples each node's CPU (user + system, from /proc/PID/stat) and RSS over S seconds.
 * Prints % of one core and MiB per node. With `--prof DIR` the nodes write CPU profiles to DIR.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { cleanupAll, startCluster, stop } from './lib/nodes.js'
import { cpuMs, rssMiB } from './lib/util.js'

/** CPU ms so far and RSS MiB of a process. */
const usage = async pid => ({ cpuMs: await cpuMs(pid), rssMiB: await rssMiB(pid) })

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '30' },
    prof: { type: 'string' }
  }
})
const size = Number(values.nodes)
const seconds = Number(values.seconds)
if (values.prof != null) process.env.NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${values.prof}`


let nodes = []
try {
  nodes = await startCluster(size, { slots: 2 })
  delete process.env.NODE_OPTIONS
  await sleep(10_000)
  const before = await Promise.all(nodes.map(node => usage(node.pid)))
  await sleep(seconds * 1000)
  const after = await Promise.all(nodes.map(node => usage(node.pid)))
  const cpu = nodes.map((_, i) => (after[i].cpuMs - before[i].cpuMs) / (seconds * 10))
  const mean = cpu.reduce((a, b) => a + b, 0) / size
  console.log(`${size} idle node(s) over ${seconds} s: CPU % of a core per node ${cpu.map(c => c.toFixed(2)).join(' ')} (mean ${mean.toFixed(2)}); RSS MiB ${after.map(u => u.rssMiB.toFixed(0)).join(' ')}`)
  for (const node of nodes) await stop(node, { signal: 'SIGINT', timeout: 30_000 })
} finally {
  await cleanupAll()
}
