/**
 * The parts of `Scheduler` (src/sched/scheduler/) on their own: the fencing decision and its
 * check on the fake clock, the intent log and crash recovery on the in-memory store, the rank
 * delay, drain and the storage backoff. The end-to-end tests (e2e-*.test.ts) check them together.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FakeClock } from '../src/clock.js'
import { attemptKey } from '../src/crdt/facts.js'
import type { RunHandle } from '../src/exec/executor.js'
import { HeldLeases } from '../src/sched/claims/held-leases.js'
import { Drain } from '../src/sched/scheduler/drain.js'
import { FENCE_CHECK_MS, Fence, fenceMarginMs, mustFence, watchdogFenceMs } from '../src/sched/scheduler/fence.js'
import { IntentLog } from '../src/sched/scheduler/intent-log.js'
import { Launcher } from '../src/sched/scheduler/launcher.js'
import { Lookahead, lookaheadWidth } from '../src/sched/scheduler/lookahead.js'
import { RankDelay } from '../src/sched/scheduler/rank-delay.js'
import { claimRank } from '../src/sched/claims/rank.js'
import { recoverLeftovers } from '../src/sched/scheduler/recovery.js'
import type { Run } from '../src/sched/scheduler/runs.js'
import { Runs } from '../src/sched/scheduler/runs.js'
import { STORAGE_BACKOFF_MS, StorageBackoff } from '../src/sched/scheduler/storage-backoff.js'
import type { JobTable, TableEntry } from '../src/sched/table.js'
import type { Claims } from '../src/sched/claims.js'
import type { Executor } from '../src/exec/executor.js'
import { StorageError } from '../src/errors.js'
import { memoryStore } from '../src/storage/memory-store.js'
import type { KVStore } from '../src/storage/store.js'
import { FailReason } from '../src/types.js'
import type { Attempt, JobId, JobSpec, PeerIdString } from '../src/types.js'

const job = 'abcdef-1' as JobId
const other = 'abcdef-2' as JobId
const self = 'self-peer' as PeerIdString

const specOf = (id: JobId, ttrMs = 6000, cores = 1): JobSpec => ({ id, ttrMs, cores, tags: [] }) as unknown as JobSpec

/** A started run whose handle records how it was killed. */
function startedRun (id: JobId, ttrMs = 6000): Run & { kills: string[] } {
  const kills: string[] = []
  const handle = { kill: (reason: string) => { kills.push(reason) } } as unknown as RunHandle
  return { spec: specOf(id, ttrMs), attempt: { job: id, epoch: 1, node: self, basis: 0, claimedAt: 0 }, handle, kills }
}

describe('the fencing decision', () => {
  it('fences once less than a check interval plus a sixth of the TTR of confirmation is left', () => {
    expect(fenceMarginMs(30_000)).toBe(FENCE_CHECK_MS + 5000)
    expect(mustFence(5500, 30_000)).toBe(false)
    expect(mustFence(5499, 30_000)).toBe(true)
    expect(mustFence(-1, 30_000)).toBe(true)
  })

  it('never fences a lease with unlimited confirmation', () => {
    expect(mustFence(undefined, 30_000)).toBe(false)
    expect(mustFence(Infinity, 1)).toBe(false)
  })

  it('the watchdog fences at half the TTR, and not at all a claim won alone', () => {
    expect(watchdogFenceMs(30_000, false)).toBe(15_000)
    expect(watchdogFenceMs(1001, false)).toBe(500)
    expect(watchdogFenceMs(30_000, true)).toBeUndefined()
  })
})

describe('Fence', () => {
  afterEach(() => { vi.useRealTimers() })

  it('kills a run as lost once its unacknowledged lease nears its end on the fake clock', () => {
    const clock = new FakeClock()
    const held = new HeldLeases(clock)
    held.hold(job, 1, 6000, 6000) // confirmed by the claim until t = 6000; margin 1500
    const run = startedRun(job)
    const fence = new Fence({ runs: () => [run], confirmedFor: id => held.confirmedFor(id) })
    clock.advance(4500)
    fence.check()
    expect(run.kills).toEqual([])
    clock.advance(1)
    fence.check()
    expect(run.kills).toEqual(['lost'])
  })

  it('keeps a run whose renewals a quorum acknowledged, and one won alone', () => {
    const clock = new FakeClock()
    const held = new HeldLeases(clock)
    held.hold(job, 1, 6000, 6000)
    held.hold(other, 1, 6000) // won alone
    clock.advance(3000)
    held.sent(1, held.due(true))
    held.acknowledged('b', 1, 1) // confirmed until 3000 + 6000
    const runs = [startedRun(job), startedRun(other)]
    const fence = new Fence({ runs: () => runs, confirmedFor: id => held.confirmedFor(id) })
    clock.advance(4000)
    fence.check()
    expect(runs.map(r => r.kills)).toEqual([[], []])
    clock.advance(100_000)
    fence.check()
    expect(runs.map(r => r.kills)).toEqual([['lost'], []])
  })

  it('leaves alone a run still being claimed (no process yet)', () => {
    const claiming: Run = { spec: specOf(job), attempt: { job, epoch: 1, node: self, basis: 0, claimedAt: 0 } }
    const confirmedFor = vi.fn(() => -1)
    new Fence({ runs: () => [claiming], confirmedFor }).check()
    expect(confirmedFor).not.toHaveBeenCalled()
  })

  it('checks every FENCE_CHECK_MS once started, and no more once stopped', () => {
    vi.useFakeTimers()
    const confirmedFor = vi.fn(() => undefined)
    const fence = new Fence({ runs: () => [startedRun(job)], confirmedFor })
    fence.start()
    vi.advanceTimersByTime(FENCE_CHECK_MS * 3)
    expect(confirmedFor).toHaveBeenCalledTimes(3)
    fence.stop()
    vi.advanceTimersByTime(FENCE_CHECK_MS * 3)
    expect(confirmedFor).toHaveBeenCalledTimes(3)
  })
})

/** The in-memory store, remembering whether each write asked for a sync. */
function recordingStore (): KVStore & { syncs: Array<boolean | undefined> } {
  const store = memoryStore()
  const syncs: Array<boolean | undefined> = []
  return { ...store, syncs, batch: async (writes, options) => { syncs.push(options?.sync); await store.batch(writes, options) } }
}

describe('IntentLog', () => {
  it('records a run before and after its start and forgets it when it ends, none of it synced (docs/architecture.md says why)', async () => {
    const store = recordingStore()
    const intents = new IntentLog(store)
    await intents.begin(job, 2)
    expect(await intents.leftovers()).toEqual([{ job, epoch: 2 }])
    await intents.started({ job, epoch: 2, pid: 4242, startTime: '98765' })
    expect(await intents.leftovers()).toEqual([{ job, epoch: 2, pid: 4242, startTime: '98765' }])
    expect((await store.get(`intent:${job}:2`)) != null).toBe(true) // the key in docs/architecture.md
    await intents.end(job, 2)
    expect(await intents.leftovers()).toEqual([])
    expect(store.syncs).toEqual([undefined, undefined, undefined])
  })

  it('keeps one intent per attempt and clears the ones given', async () => {
    const store = memoryStore()
    const intents = new IntentLog(store)
    await intents.begin(job, 1)
    await intents.begin(job, 2)
    await intents.begin(other, 1)
    await store.batch([{ key: 'other:key', value: new Uint8Array([1]) }])
    const left = await intents.leftovers()
    expect(left).toHaveLength(3)
    await intents.clear(left.filter(i => i.job === job))
    expect(await intents.leftovers()).toEqual([{ job: other, epoch: 1 }])
    expect(await store.get('other:key')).toEqual(new Uint8Array([1]))
  })
})

describe('recoverLeftovers', () => {
  /** A table holding one attempt of this node per job. */
  interface TableStub { get: (id: JobId) => TableEntry | undefined, refresh: (ids: JobId[]) => void, refreshed: JobId[] }

  function tableWith (attempts: Attempt[]): TableStub {
    const refreshed: JobId[] = []
    return {
      refreshed,
      get: id => {
        const mine = attempts.filter(a => a.job === id)
        if (mine.length === 0) return undefined
        return { facts: { attempts: new Map(mine.map(a => [attemptKey(a.job, a.epoch, a.node), a])) } } as unknown as TableEntry
      },
      refresh: ids => { refreshed.push(...ids) }
    }
  }

  it('kills leftover groups, records open attempts as lost, and deletes every intent', async () => {
    const clock = new FakeClock()
    const intents = new IntentLog(memoryStore())
    const open: Attempt = { job, epoch: 1, node: self, basis: 0, claimedAt: 10, startedAt: 20 }
    const ended: Attempt = { job: other, epoch: 3, node: self, basis: 0, claimedAt: 10, startedAt: 20, endedAt: 30, exitCode: 0 }
    await intents.started({ job, epoch: 1, pid: 4242, startTime: '98765' })
    await intents.begin(other, 3) // crashed before spawning
    const table = tableWith([open, ended])
    const kills: Array<[number, string]> = []
    const written: Array<[Attempt, boolean]> = []
    const count = await recoverLeftovers({
      self,
      clock,
      table,
      intents,
      writeAttempt: async (attempt, sync) => { written.push([attempt, sync]) },
      kill: (pid, startTime) => { kills.push([pid, startTime]); return true }
    })
    expect(count).toBe(2)
    expect(kills).toEqual([[4242, '98765']])
    expect(written).toEqual([[{ ...open, endedAt: clock.now(), failReason: FailReason.lost }, true]])
    expect(await intents.leftovers()).toEqual([])
    expect(table.refreshed.sort()).toEqual([job, other])
  })

  it('with no intents does nothing', async () => {
    const table = tableWith([])
    const writeAttempt = vi.fn(async () => {})
    expect(await recoverLeftovers({ self, clock: new FakeClock(), table, intents: new IntentLog(memoryStore()), writeAttempt })).toBe(0)
    expect(writeAttempt).not.toHaveBeenCalled()
  })
})

describe('RankDelay', () => {
  it('runs from when the job was first seen ready, and starts again once it was not', () => {
    const clock = new FakeClock()
    const delay = new RankDelay(clock, { claimDelay: rank => rank * 100, retryAt: () => 0 })
    delay.seen(job, true)
    clock.advance(200)
    delay.seen(job, true) // still ready: the delay does not restart
    expect(delay.claimAt(specOf(job), 3)).toBe(300)
    delay.seen(job, false)
    delay.seen(job, true)
    expect(delay.claimAt(specOf(job), 3)).toBe(500)
    delay.forget(job)
    clock.advance(100)
    expect(delay.claimAt(specOf(job), 3)).toBe(600) // unseen: from now
  })

  it('waits for the claim backoff when that ends later', () => {
    const clock = new FakeClock()
    const delay = new RankDelay(clock, { claimDelay: rank => rank * 100, retryAt: () => 2500 })
    expect(delay.claimAt(specOf(job), 3)).toBe(2500)
  })
})

describe('Lookahead', () => {
  const specs = (n: number, extra: Partial<JobSpec> = {}): JobSpec[] =>
    Array.from({ length: n }, (_, i) => ({ ...specOf(`segaaa-${i}` as JobId), ...extra }))
  const offerAll = (lookahead: Lookahead, jobs: JobSpec[], rankOf: (spec: JobSpec) => number): number => {
    let offered = 0
    for (const spec of jobs) {
      offered++
      if (!lookahead.offer(spec, rankOf(spec))) break
    }
    return offered
  }

  it('keeps the run order where every rank is 0 (one node)', () => {
    const lookahead = new Lookahead(4)
    expect(offerAll(lookahead, specs(10), () => 0)).toBe(4)
    expect(lookahead.picks(3).map(s => s.id)).toEqual(['segaaa-0', 'segaaa-1', 'segaaa-2'])
  })

  it('takes the jobs it ranks best for first, in run order among equal ranks, as many as fit', () => {
    const lookahead = new Lookahead(5)
    const jobs = specs(5)
    const ranks = [2, 1, 0, 1, 0]
    offerAll(lookahead, jobs, spec => ranks[jobs.indexOf(spec)])
    expect(lookahead.picks(3).map(s => s.id)).toEqual(['segaaa-2', 'segaaa-4', 'segaaa-1'])
    const wide = new Lookahead(5)
    offerAll(wide, [{ ...jobs[0], cores: 2 }, jobs[1]], () => 0)
    expect(wide.picks(1).map(s => s.id)).toEqual(['segaaa-1']) // the 2-core job does not fit
  })

  it('picks a job the run queue holds twice once: launched twice, it would run twice', () => {
    const lookahead = new Lookahead(4)
    const [a, b] = specs(2)
    offerAll(lookahead, [a, a, b], () => 0)
    expect(lookahead.picks(3).map(s => s.id)).toEqual(['segaaa-0', 'segaaa-1'])
  })

  it('looks no further than a change of priority', () => {
    const lookahead = new Lookahead(10)
    const jobs = [...specs(2, { pri: 5 }), ...specs(3)]
    expect(offerAll(lookahead, jobs, spec => spec.pri === 5 ? 3 : 0)).toBe(3)
    expect(lookahead.picks(5).map(s => s.pri)).toEqual([5, 5])
  })

  it('spreads nodes that take from one backlog at once over different jobs', () => {
    const nodes = Array.from({ length: 20 }, (_, i) => `node-${i}`)
    const backlog = specs(400)
    const rankAmong = (self: string) => (spec: JobSpec) => nodes.filter(p => claimRank(spec.id, p) < claimRank(spec.id, self)).length
    const picks = nodes.map(self => {
      const lookahead = new Lookahead(lookaheadWidth(nodes.length, 1))
      offerAll(lookahead, backlog, rankAmong(self))
      return lookahead.picks(1)[0].id
    })
    // taking the first job, all 20 would claim the same one; here most claim one no other node does
    expect(new Set(picks).size).toBeGreaterThanOrEqual(14)
  })
})

describe('Runs and Drain', () => {
  it('a drain resolves when the last run ends, at once when none runs', async () => {
    await new Drain().untilIdle(0)
    const drain = new Drain()
    let drained = false
    const done = drain.untilIdle(2).then(() => { drained = true })
    expect(drain.active).toBe(true)
    drain.runEnded(1)
    await Promise.resolve()
    expect(drained).toBe(false)
    drain.runEnded(0)
    await done
    expect(drained).toBe(true)
  })

  it('a run takes its cores until its slot is freed, once', () => {
    const runs = new Runs()
    const run: Run = { spec: specOf(job, 6000, 3), attempt: { job, epoch: 2, node: self, basis: 0, claimedAt: 0 } }
    runs.add(run)
    expect([runs.size, runs.used]).toEqual([1, 3])
    expect(runs.holds({ ...run.attempt }, self)).toBe(true)
    expect(runs.holds({ ...run.attempt, epoch: 1 }, self)).toBe(false)
    runs.freeSlot(run)
    runs.remove(job)
    expect([runs.size, runs.used]).toEqual([0, 0])
  })
})

describe('Launcher', () => {
  it('does not announce the release of a run whose end could not be written: the lease lapses on the others instead', async () => {
    const releases: Array<{ recorded?: boolean }> = []
    const written: Attempt[] = []
    const result = { startedAt: 1, endedAt: 2, exitCode: 0, stdoutBytes: 0, stderrBytes: 0, truncated: false, tail: '' }
    const handle = { pid: 7, startTime: 's', startedAt: 1, result: Promise.resolve(result), kill: () => {}, outputPaths: {}, wrapUp: async () => {} }
    const launcher = new Launcher({
      self,
      clock: new FakeClock(),
      table: { get: () => ({ derived: { state: 'ready', epoch: 0, lamport: 0 } }), requeue: () => {}, refresh: () => {} } as unknown as JobTable,
      claims: {
        nextEpoch: () => 1, claim: async () => true, heldAlone: () => false, quorum: () => 2,
        release: (_: JobId, options: { recorded?: boolean }) => { releases.push(options) }
      } as unknown as Claims,
      executor: { run: async () => handle } as unknown as Executor,
      runs: new Runs(),
      intents: new IntentLog(memoryStore()),
      writeAttempt: async attempt => {
        if (attempt.endedAt != null) throw new StorageError('no space left on device')
        written.push(attempt)
      },
      settler: () => undefined,
      taken: () => {},
      storageFailed: () => {},
      changed: () => {}
    })
    await launcher.launch(specOf(job))
    expect(written).toHaveLength(1) // the start was recorded
    expect(releases).toEqual([{ recorded: false }])
  })
})

describe('StorageBackoff', () => {
  it('blocks claims for STORAGE_BACKOFF_MS after a failed write', () => {
    const clock = new FakeClock()
    const backoff = new StorageBackoff(clock)
    expect(backoff.remaining()).toBeLessThanOrEqual(0)
    backoff.failed()
    clock.advance(STORAGE_BACKOFF_MS - 1)
    expect(backoff.remaining()).toBe(1)
    clock.advance(1)
    expect(backoff.remaining()).toBe(0)
  })
})
