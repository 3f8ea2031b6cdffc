/**
 * The job table, the claims and the scheduler of a node, wired to each other. They form a cycle:
 * the table asks the claims and the scheduler whether a lease is alive, the claims ask the table
 * about jobs and tell the scheduler about leases, and the scheduler uses both. The callbacks below
 * reach `claims` and `scheduler` only when they are called, which none of the three constructors
 * does: by the time the node starts (and the ledger loads), all three exist.
 */
import type { Clock } from '../clock.js'
import type { Ledger } from '../crdt/ledger.js'
import type { KVStore } from '../storage/store.js'
import type { Executor } from '../exec/executor.js'
import type { GossipCodec } from '../net/topics.js'
import { decodeBatch } from '../sched/claim-batch.js'
import type { ClaimBatch } from '../sched/claim-batch.js'
import { Claims } from '../sched/claims.js'
import type { ClaimsInit } from '../sched/claims.js'
import { NodeMemory } from '../sched/placement.js'
import { Scheduler } from '../sched/scheduler.js'
import { DEFAULT_TTR_MS } from '../jobs/draft.js'
import { JobTable } from '../sched/table.js'
import { JobState } from '../types.js'
import type { PeerIdString } from '../types.js'

export interface SchedulingInit extends Pick<ClaimsInit, 'transport' | 'peers' | 'members' | 'othersSilentFor'> {
  self: PeerIdString
  clock: Clock
  ledger: Ledger
  store: KVStore
  executor: Executor
  slots: number
  tags: string[]
  memBytes?: number
  claimWindowMs?: number
}

export interface Scheduling {
  table: JobTable
  claims: Claims
  scheduler: Scheduler
}

/** How claim batches are read and checked on their gossip topic (`meshq/<cluster>/claims/2`). */
export const CLAIMS_TOPIC = 'claims/2'
export const claimBatchCodec: GossipCodec<ClaimBatch> = { decode: decodeBatch, author: batch => batch.peer, stamp: batch => batch }

export function scheduling (init: SchedulingInit): Scheduling {
  const { self, clock } = init
  const table: JobTable = new JobTable({
    clock,
    leaseAlive: attempt => attempt.node === self
      ? scheduler.holds(attempt)
      : claims.alive(attempt, table.get(attempt.job)?.facts.spec.ttrMs ?? DEFAULT_TTR_MS)
  })
  const claims: Claims = new Claims({
    self,
    clock,
    transport: init.transport,
    windowMs: init.claimWindowMs,
    peers: init.peers,
    members: init.members,
    othersSilentFor: init.othersSilentFor,
    onExpired: jobs => {
      table.refresh(jobs)
      scheduler.schedulePass() // a job whose claim lease lapsed is still "ready": nothing else would wake the scheduler
    },
    onPreempted: job => { scheduler.preempted(job) },
    onReleased: () => { scheduler.schedulePass() },
    claimable: (job, epoch) => {
      const derived = table.get(job)?.derived
      return derived == null || (derived.state !== JobState.done && derived.epoch < epoch)
    },
    knownEpoch: job => table.get(job)?.derived.epoch ?? 0,
    ended: (job, epoch) => {
      const entry = table.get(job)
      if (entry == null) return table.sealedJob(job) != null
      return entry.derived.state === JobState.done || [...entry.facts.attempts.values()].some(a => a.epoch === epoch && a.endedAt != null)
    },
    capsOf: job => {
      const spec = table.get(job)?.facts.spec
      return spec == null ? [] : table.capsOf(spec)
    }
  })
  const scheduler = new Scheduler({
    self, slots: init.slots, tags: init.tags, clock, table, ledger: init.ledger, store: init.store, executor: init.executor, claims,
    memory: new NodeMemory(init.memBytes)
  })
  return { table, claims, scheduler }
}
