/**
 * The checker: reads what the probes recorded and what every ledger says, and reports lost,
 * unexpected, duplicate and overlapping runs, and whether the ledgers agree.
 */
import { readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'

/** Every run a probe started: its begin mark, its end if it finished, else when it was last alive. */
export async function readRuns (workload) {
  const ended = new Map()
  const text = await readFile(workload.log, 'utf8').catch(() => '')
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    const run = JSON.parse(line)
    ended.set(`${run.job}.${run.attempt}.${run.node}.${run.start}`, run)
  }
  const runs = []
  for (const file of await readdir(workload.runs).catch(() => [])) {
    const path = join(workload.runs, file)
    const begin = JSON.parse((await readFile(path, 'utf8')).split('\n')[0])
    const end = ended.get(`${begin.job}.${begin.attempt}.${begin.node}.${begin.start}`)
    runs.push(end != null ? { ...end, completed: true } : { ...begin, end: (await stat(path)).mtimeMs, completed: false })
  }
  return runs
}

/**
 * Whether nodes a and b (names like `n3`) could not reach each other at some moment in [from, to].
 * `timeline` is a list of `{t, cut}` sorted by t, `cut` the directed pairs `a>b` (node numbers)
 * dropped from t on; a cut lasts until the next entry (the harness adds an empty one once the
 * nodes see each other again after healing).
 */
export function separated (timeline, a, b, from, to) {
  const [x, y] = [a, b].map(n => Number(n.slice(1)))
  for (let k = 0; k < timeline.length; k++) {
    const start = timeline[k].t
    const end = timeline[k + 1]?.t ?? Infinity
    if (end < from || start > to) continue
    if (timeline[k].cut.includes(`${x}>${y}`) || timeline[k].cut.includes(`${y}>${x}`)) return true
  }
  return false
}

/**
 * Pairs of runs of one job whose times intersect. An overlap is across a partition when the harness
 * cut the two nodes apart between the first start and the overlap's end, or when one of the runs
 * was won alone (`aloneAttempts`, `job:epoch`): its node had been cut off from every member, by the
 * network itself (a lossy link whose connections died), and claimed without votes, as meshq's
 * partition rule allows.
 */
export function overlaps (runs, timeline, aloneAttempts = new Set()) {
  const byJob = new Map()
  for (const run of runs) byJob.set(run.job, [...(byJob.get(run.job) ?? []), run])
  const found = []
  for (const [job, list] of byJob) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const [p, q] = [list[i], list[j]]
        const from = Math.max(p.start, q.start)
        const to = Math.min(p.end, q.end)
        if (from >= to) continue
        const cut = p.node !== q.node && separated(timeline, p.node, q.node, Math.min(p.start, q.start), to)
        const alone = [p, q].find(r => aloneAttempts.has(`${r.job}:${r.attempt}`))
        const why = cut ? 'the harness cut the nodes apart' : alone != null ? `${alone.node} ran it alone, cut off from every member` : undefined
        found.push({ job, runs: [p, q].map(r => `${r.node} epoch ${r.attempt} ${r.completed ? 'completed' : 'interrupted'}`), ms: Math.round(to - from), acrossPartition: why != null, why })
      }
    }
  }
  return found
}

/** What each ledger says, reduced to what must agree: every job's state and attempts. */
export function ledgerDigest (jobs) {
  return JSON.stringify(jobs.map(j => [j.id, j.state, (j.attempts ?? []).map(a => `${a.epoch}:${a.node}:${a.exitCode ?? ''}:${a.failReason ?? ''}`).sort()]).sort())
}

/**
 * The verdict. `ledgers` maps node name to its `ls --json`; `extraJobs` are ids the scenario
 * submitted itself (not probes), allowed in the ledgers.
 */
export function check ({ workload, runs, timeline, ledgers }) {
  const keyOfJob = new Map([...workload.acknowledged].map(([key, id]) => [id, key]))
  const completedJobs = new Set(runs.filter(r => r.completed).map(r => r.job))
  const acknowledged = [...workload.acknowledged.values()]
  const lost = acknowledged.filter(id => !completedJobs.has(id))
  const unexpected = [...new Set(runs.filter(r => !workload.attempted.has(r.key) || (keyOfJob.has(r.job) && keyOfJob.get(r.job) !== r.key)).map(r => r.job))]
  // runs of submits whose answer never came (the node died, or refused after writing)
  const unacknowledgedRan = [...new Set(runs.filter(r => workload.attempted.has(r.key) && !workload.acknowledged.has(r.key)).map(r => r.job))]
  const completedRuns = runs.filter(r => r.completed).length
  const aloneAttempts = new Set(Object.values(ledgers).flatMap(jobs => jobs.flatMap(j => (j.attempts ?? []).filter(a => a.alone === true).map(a => `${j.id}:${a.epoch}`))))
  const overlapping = overlaps(runs, timeline, aloneAttempts)
  const digests = Object.fromEntries(Object.entries(ledgers).map(([node, jobs]) => [node, ledgerDigest(jobs)]))
  const ledgersAgree = new Set(Object.values(digests)).size <= 1
  const notDone = Object.fromEntries(Object.entries(ledgers).map(([node, jobs]) => {
    const states = new Map(jobs.map(j => [j.id, j.state]))
    return [node, acknowledged.filter(id => states.get(id) !== 'done').length]
  }))
  const result = {
    submitted: workload.attempted.size,
    acknowledged: acknowledged.length,
    refused: Object.fromEntries(workload.refused),
    completed: acknowledged.length - lost.length,
    lost: lost.length,
    lostJobs: lost.slice(0, 20),
    unexpected: unexpected.length,
    unexpectedJobs: unexpected.slice(0, 20),
    unacknowledgedRan: unacknowledgedRan.length,
    runs: runs.length,
    completedRuns,
    interruptedRuns: runs.length - completedRuns,
    duplicateRuns: completedRuns - completedJobs.size,
    rerunJobs: countReruns(runs),
    overlapsConnected: overlapping.filter(o => !o.acrossPartition).length,
    overlapsAcrossPartition: overlapping.filter(o => o.acrossPartition).length,
    overlaps: overlapping.slice(0, 20),
    ledgersAgree,
    notDoneInLedger: notDone
  }
  result.failures = [
    ...(result.lost > 0 ? [`${result.lost} acknowledged jobs never completed`] : []),
    ...(result.unexpected > 0 ? [`${result.unexpected} jobs ran that nobody submitted`] : []),
    ...(result.overlapsConnected > 0 ? [`${result.overlapsConnected} overlapping runs between connected nodes`] : []),
    ...(ledgersAgree ? [] : ['the ledgers disagree after healing']),
    ...(Object.values(notDone).some(n => n > 0) ? ['some ledger does not show every acknowledged job done'] : [])
  ]
  return result
}

function countReruns (runs) {
  const counts = new Map()
  for (const r of runs) counts.set(r.job, (counts.get(r.job) ?? 0) + 1)
  return [...counts.values()].filter(n => n > 1).length
}
