import { afterAll, describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { spawn } from 'node:child_process'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { json, ok, startCluster } from './cluster.js'
import type { TestNode } from './cluster.js'
import { tempDir, waitFor } from './helpers.js'
import type { JobView } from '../src/types.js'

const cleanups: Array<() => Promise<void>> = []
afterAll(async () => { for (const c of cleanups.splice(0)) await c() })

async function cluster (size: number, args: string[] = []): Promise<TestNode[]> {
  const nodes = await startCluster(size, args)
  cleanups.push(async () => { for (const n of nodes) await n.cleanup() })
  return nodes
}

/** Lines of a file of `<mark> <job> <attempt> <node-pid>` records. */
async function records (file: string): Promise<string[][]> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(l => l !== '').map(l => l.split(' '))
}

describe('distributed claims', () => {
  // with the CPU saturated (two busy loops per core, as when nodes run real jobs), event loops stall
  // for seconds: claims must still give each job one run. CI runs the race three times in a row.
  const races = process.env.MESHQ_SLOW_TESTS === '1' ? 3 : 1
  it(`five nodes racing for 300 jobs submitted at once, with the CPU saturated, run each job exactly once (${races} races)`, async () => {
    const nodes = await cluster(5, ['--slots', '2'])
    const busy = Array.from({ length: 2 * availableParallelism() }, () => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }))
    try {
      await race(nodes)
    } finally {
      for (const loop of busy) loop.kill('SIGKILL')
    }
  }, 300_000 * races)

  async function race (nodes: TestNode[]): Promise<void> {
    for (let race = 0; race < races; race++) {
      const work = await tempDir('meshq-race-')
      cleanups.push(work.cleanup)
      const file = join(work.dir, 'ran')
      const batch = Array.from({ length: 300 }, () => JSON.stringify({ cmd: ['sh', '-c', `echo $MESHQ_JOB_ID $MESHQ_ATTEMPT >> ${file}`] })).join('\n')
      const ids = (await ok(nodes[race % 5].home, ['sub', '--batch'], { input: batch })).trim().split('\n')
      expect(ids).toHaveLength(300)
      await ok(nodes[(race + 2) % 5].home, ['wait', ...ids], { timeout: 240_000 })
      const ran = (await records(file)).map(r => r[0])
      const twice = [...new Set(ran.filter((id, i) => ran.indexOf(id) !== i))]
      // what a failure needs to be understood: every attempt of a job that ran twice, as the ledger has them
      const attempts = await Promise.all(twice.map(async id => (await json<JobView>(nodes[0].home, ['show', id])).attempts))
      expect(attempts, `race ${race + 1}: attempts of the jobs that ran twice`).toEqual([])
      expect(ran.length, `race ${race + 1}: runs`).toBe(300)
      expect(new Set(ran)).toEqual(new Set(ids))
      const jobs = await json<JobView[]>(nodes[4].home, ['ls', '--limit', '300'])
      const byNode = new Map<string, number>()
      for (const job of jobs) byNode.set(job.node as string, (byNode.get(job.node as string) ?? 0) + 1)
      // rendezvous ranking spreads the work: more than one node ran jobs
      expect(byNode.size).toBeGreaterThan(1)
      // every attempt that started ran to its end: nothing was fenced or recorded lost
      expect(jobs.flatMap(j => j.attempts.filter(a => a.startedAt != null && a.failReason != null)), `race ${race + 1}: lost attempts`).toEqual([])
      console.log(`race ${race + 1}: 300 jobs, 300 runs, per node ${[...byNode.values()].join('/')}`)
    }
  }

  it('a job whose holder is killed with SIGKILL reruns elsewhere after its TTR, and the old process does not finish', async () => {
    const nodes = await cluster(3, ['--slots', '2'])
    const work = await tempDir('meshq-failover-')
    cleanups.push(work.cleanup)
    const file = join(work.dir, 'marks')
    // the first run would take 5 minutes; later ones finish at once. (Its epoch need not be 1: a
    // claim made within 3 s of the nodes' start finds them in their quiet period, and fails.)
    const script = `echo start $MESHQ_JOB_ID $MESHQ_ATTEMPT >> ${file}; if mkdir ${file}.first 2>/dev/null; then sleep 300; fi; echo end $MESHQ_JOB_ID $MESHQ_ATTEMPT >> ${file}`
    const id = (await ok(nodes[0].home, ['sub', '--ttr', '5s', '--', 'sh', '-c', script])).trim()
    const running = await waitFor(async () => { const j = await json<JobView>(nodes[0].home, ['show', id]); return j.state === 'running' ? j : undefined })
    const holder = nodes.find(n => n.output().includes(running.node as string)) as TestNode
    expect(holder).toBeDefined()
    const killedAt = Date.now()
    await holder.kill('SIGKILL')
    const survivor = nodes.find(n => n !== holder) as TestNode
    const done = await waitFor(async () => { const j = await json<JobView>(survivor.home, ['show', id]); return j.state === 'done' ? j : undefined }, { timeout: 60_000, what: 'the job to rerun and finish' })
    const epoch = Math.max(...running.attempts.map(a => a.epoch))
    const rerun = done.attempts.find(a => a.epoch > epoch && a.startedAt != null)
    expect(rerun?.node).not.toBe(running.node)
    const failover = Date.parse(rerun?.startedAt as string) - killedAt
    console.log(`failover: rerun started ${failover} ms after SIGKILL of the holder (TTR 5000 ms)`)
    // the last renewal the others heard is at most TTR/4 old: the lease lapses at least 3/4 TTR after the kill
    expect(failover).toBeGreaterThanOrEqual(3000)
    const marks = await records(file)
    expect(marks.filter(m => m[0] === 'end' && m[2] === String(epoch))).toHaveLength(0)
    expect(marks.filter(m => m[0] === 'end' && m[2] === String(rerun?.epoch))).toHaveLength(1)
  }, 180_000)

  it('a holder paused (SIGSTOP) past the TTR is fenced: its run and the rerun elsewhere never overlap', async () => {
    const nodes = await cluster(3, ['--slots', '2'])
    const work = await tempDir('meshq-pause-')
    cleanups.push(work.cleanup)
    const file = join(work.dir, 'ticks')
    // every attempt ticks into the file every 100 ms for 6 s: a tick is proof that it was alive then
    const script = `i=0; while [ $i -lt 60 ]; do echo tick $MESHQ_ATTEMPT $(date +%s%N) >> ${file}; sleep 0.1; i=$((i+1)); done`
    // TTR 6 s: the holder fences itself after 3 s of silence, so a loaded machine's stalls stay below that
    const id = (await ok(nodes[0].home, ['sub', '--ttr', '6s', '--', 'sh', '-c', script])).trim()
    const running = await waitFor(async () => { const j = await json<JobView>(nodes[0].home, ['show', id]); return j.state === 'running' ? j : undefined }, { timeout: 60_000, what: 'the job to start' })
    const holder = nodes.find(n => n.output().includes(running.node as string)) as TestNode
    const survivor = nodes.find(n => n !== holder) as TestNode
    const epoch = Math.max(...running.attempts.map(a => a.epoch))
    holder.process.kill('SIGSTOP')
    let rerun = 0
    try {
      rerun = await waitFor(async () => (await json<JobView>(survivor.home, ['show', id])).attempts.find(a => a.epoch > epoch && a.startedAt != null)?.epoch, { timeout: 60_000, what: 'the rerun to start' })
    } finally {
      holder.process.kill('SIGCONT')
    }
    await waitFor(async () => (await json<JobView>(survivor.home, ['show', id])).state === 'done', { timeout: 60_000, what: 'the job to finish' })
    const ticks = (await records(file)).map(([, attempt, at]) => ({ attempt: Number(attempt), at: BigInt(at) }))
    const lastOfFirst = ticks.filter(t => t.attempt === epoch).map(t => t.at).reduce((a, b) => a > b ? a : b)
    const firstOfSecond = ticks.filter(t => t.attempt === rerun).map(t => t.at).reduce((a, b) => a < b ? a : b)
    console.log(`pause: attempt ${epoch} last alive ${Number(firstOfSecond - lastOfFirst) / 1e6} ms before attempt ${rerun} started`)
    expect(lastOfFirst < firstOfSecond).toBe(true)
    // the fenced run is recorded lost (it does not count as a failure), once the holder runs again
    const first = await waitFor(async () => (await json<JobView>(survivor.home, ['show', id])).attempts.find(a => a.epoch === epoch && a.endedAt != null), { timeout: 60_000, what: 'the fenced attempt recorded' })
    expect(first.failReason).toBe('lost')
  }, 180_000)
})
