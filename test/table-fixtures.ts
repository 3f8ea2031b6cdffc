/** Facts and a job table for the table's unit tests: specs of segment `segaaa`, two peers, the fake clock. */
import { FakeClock } from '../src/clock.js'
import { SegmentMap, attemptKey, controlKey } from '../src/crdt/facts.js'
import type { FactChange } from '../src/crdt/facts.js'
import { JobTable } from '../src/sched/table.js'
import type { Attempt, Control, JobId, JobSpec, PeerIdString } from '../src/types.js'

export const A = 'peerA' as PeerIdString
export const B = 'peerB' as PeerIdString

/** Job `segaaa-n`, submitted by A at 1000 + n. */
export function spec (n: number, extra: Partial<JobSpec> = {}): JobSpec {
  return {
    id: `segaaa-${n}` as JobId, cmd: ['true'], cwd: '/', env: {}, after: [], afterGroup: [], pri: 0, retries: 0,
    ttrMs: 30_000, tags: [], cores: 1, submitter: A, submittedAt: 1000 + n, n, seq: n, ...extra
  }
}

export const jobFact = (s: JobSpec): FactChange => ({ doc: 'segaaa', map: SegmentMap.jobs, key: s.id, value: s })
export const attemptFact = (a: Attempt): FactChange =>
  ({ doc: 'segaaa', map: SegmentMap.attempts, key: attemptKey(a.job, a.epoch, a.node), value: a })
export const controlFact = (job: JobId, c: Control): FactChange =>
  ({ doc: 'segaaa', map: SegmentMap.controls, key: controlKey(job, c.lamport, c.by), value: c })

/** A table whose open attempts hold their leases until they end. */
export function table (clock = new FakeClock()): JobTable {
  return new JobTable({ clock, leaseAlive: a => a.endedAt == null })
}
