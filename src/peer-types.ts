/**
 * The node and the cluster as clients see them: status, members, invites, statistics.
 * Imports only the other type modules: client commands import it and must start fast.
 */
import type { JobState, PeerIdString } from './job-types.js'

export interface PeerView {
  id: PeerIdString
  addrs: string[]
  self: boolean
  connected: boolean
  state: 'up' | 'draining' | 'unreachable'
  slots: number
  running: number
  tags: string[]
  /** Bytes of memory free there for jobs' `--mem`, as it last said (absent from nodes of protocol 2.0). */
  memFree?: number
}

/** An invite as `meshq invite --list` shows it (the secret is only ever in the token). */
export interface InviteView {
  id: string
  by: string
  createdAt: string
  expiresAt: string
  uses: number
  used: number
  revoked: boolean
  expired: boolean
}

/** The longest an invite may stay valid: 365 days. */
export const MAX_INVITE_TTL_MS = 365 * 24 * 60 * 60 * 1000

export interface InviteCreated {
  id: string
  token: string
  expiresAt: string
}

export interface StatsView {
  states: Record<JobState, number>
  groups: Record<string, Partial<Record<JobState, number>>>
  /** Jobs finished per second over the last minute. */
  throughput: number
  nodes: Array<{ id: PeerIdString, slots: number, running: number }>
  /** What this node's claims cost since it started: gossip batches and the entries in them. */
  coordination: CoordinationStats
}

/** Counters of a node's claim traffic since it started (`meshq stats --json`, the benchmarks). */
export interface CoordinationStats {
  /** Claim batches published. */
  batches: number
  claims: number
  claimsWon: number
  claimsLost: number
  votes: number
  renewals: number
  acks: number
}

export interface NodeStatus {
  id: PeerIdString
  clusterId: string
  home: string
  slots: number
  running: number
  draining: boolean
  tags: string[]
  version: string
}
