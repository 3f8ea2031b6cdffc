#!/usr/bin/env node
/**
 * What the start-up check of the ledger store costs (`findCorruption`, src/storage/leveldb-check/):
 * `node bench/store-check.js [--dir DIR] [--mb 20] [--runs 3]`. Needs a build (`npx tsc -p tsconfig.build.json`).
 *
 * Writes a store of about `--mb` MB through the node's own code (LevelDB store and ledger): segments of
 * 1000 jobs with their specs and ended attempts, each then sealed with its final job records, as a node
 * that ran them would. With `--dir` it writes the store there, or reuses the store already there. Then
 * it checks the store `--runs` times, each in a new process as a starting node does (loading the
 * check's modules, then one check), and prints the times of each run and their medians as one JSON
 * line: wall-clock and CPU (user + system) milliseconds, the CPU time being the steadier on a busy machine.
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Ledger } from '../dist/crdt/ledger.js'
import { SegmentMap, segmentOf } from '../dist/crdt/facts.js'
import { openLevelStore } from '../dist/storage/level-store.js'
import { now, percentile, round } from './lib/util.js'

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    mb: { type: 'string', default: '20' },
    runs: { type: 'string', default: '3' },
    'check-only': { type: 'boolean', default: false }
  }
})

const SELF = '12D3KooWBenchStoreCheckBenchStoreCheckBenchStore'
/** A submitter's environment as `meshq sub` copies it: about 1 KiB. */
const ENV = Object.fromEntries(Array.from({ length: 24 }, (_, i) => [`BENCH_VAR_${i}`, `/opt/bench/tool-${i}/bin:/usr/local/lib/${i}`]))

function spec ({ id, n, seq }) {
  return {
    id, cmd: ['sh', '-c', `./process.sh --input data/part-${seq}.csv --output out/${seq}.json`], cwd: '/srv/bench/project',
    env: ENV, group: `batch-${Math.floor(seq / 250)}`, after: [], afterGroup: [], pri: 0, retries: 2, ttrMs: 30_000,
    tags: [], cores: 1, submitter: SELF, submittedAt: Date.now(), n, seq
  }
}

function attempt (id, at) {
  return {
    job: id, epoch: 1, node: SELF, basis: 0, claimedAt: at, startedAt: at + 3, endedAt: at + 1500, exitCode: 0,
    stdoutBytes: 2048, stderrBytes: 0, tail: `processed ${id}\nrows: 12873\nwritten out/${id}.json\n`, peakRssKb: 20480, cpuMs: 1200
  }
}

/** The final job record (`JobView`) that sealing stores for a job. */
function record (s, a) {
  const iso = ms => new Date(ms).toISOString()
  return {
    ...s, submittedAt: iso(s.submittedAt), state: 'done', exitCode: 0, node: SELF, startedAt: iso(a.startedAt), endedAt: iso(a.endedAt),
    attempts: [{ epoch: 1, node: SELF, claimedAt: iso(a.claimedAt), startedAt: iso(a.startedAt), endedAt: iso(a.endedAt), exitCode: 0, tail: a.tail }]
  }
}

async function sizeOf (dir) {
  const names = await readdir(dir)
  const sizes = await Promise.all(names.map(async n => (await stat(join(dir, n))).size))
  return sizes.reduce((a, b) => a + b, 0)
}

/** Seals segments of finished jobs into the store at `dir` until it holds `bytes`. */
async function writeStore (dir, bytes) {
  const store = await openLevelStore(dir)
  const ledger = new Ledger({ store, self: SELF })
  await ledger.open({ createMeta: true })
  while (await sizeOf(dir) < bytes) {
    const slots = await ledger.allocateJobIds(ledger.capacity)
    const doc = segmentOf(slots[0].id)
    const specs = slots.map(spec)
    await ledger.put(specs.map(s => ({ doc, map: SegmentMap.jobs, key: s.id, value: s })), { sync: true })
    const attempts = specs.map(s => attempt(s.id, Date.now()))
    await ledger.put(attempts.map(a => ({ doc, map: SegmentMap.attempts, key: `${a.job}|1:${SELF}`, value: a })), { sync: true })
    const records = specs.map((s, i) => record(s, attempts[i]))
    await ledger.seal(doc, records, records.map(r => ({ id: r.id, state: r.state, group: r.group, submittedAt: r.submittedAt, seq: r.seq })))
  }
  await ledger.close()
  await store.close()
}

/** This process's CPU time so far (user + system), in ms. */
const selfCpuMs = () => {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}

/** One run, in this process: loads the check and checks the store at `dir` once. */
async function checkOnce (dir) {
  const start = { wall: now(), cpu: selfCpuMs() }
  const { findCorruption } = await import('../dist/storage/leveldb-check/check.js')
  const problem = await findCorruption(dir)
  if (problem !== undefined) throw new Error(`the check found a problem in a sound store: ${problem}`)
  return { wallMs: round(now() - start.wall, 1), cpuMs: round(selfCpuMs() - start.cpu, 1) }
}

/** A run in a new process. */
function checkInChild (dir) {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--check-only', '--dir', dir], { encoding: 'utf8' })
  return JSON.parse(out)
}

async function main () {
  const own = values.dir === undefined
  const dir = values.dir ?? await mkdtemp(join(tmpdir(), 'meshq-store-check-'))
  try {
    if ((await readdir(dir).catch(() => [])).length === 0) await writeStore(dir, Number(values.mb) * 1e6)
    const names = await readdir(dir)
    const runs = Array.from({ length: Number(values.runs) }, () => checkInChild(dir))
    console.log(JSON.stringify({
      storeMB: round(await sizeOf(dir) / 1e6, 1),
      tables: names.filter(n => /\.(ldb|sst)$/.test(n)).length,
      logs: names.filter(n => /\.log$/.test(n)).length,
      runs,
      medianWallMs: percentile(runs.map(r => r.wallMs), 50),
      medianCpuMs: percentile(runs.map(r => r.cpuMs), 50)
    }))
  } finally {
    if (own) await rm(dir, { recursive: true, force: true })
  }
}

if (values['check-only']) console.log(JSON.stringify(await checkOnce(values.dir)))
else await main()
