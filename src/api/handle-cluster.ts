/** The routes about the node and the cluster: status, groups, history, peers and invites. */
import { UsageError } from '../errors.js'
import { MAX_INVITE_TTL_MS } from '../types.js'
import { badRequest, type Handlers } from './dispatch.js'
import type { Engine } from './engine.js'
import { readJson } from './request-body.js'

type ClusterRoute = 'status' | 'pause' | 'resume' | 'limit' | 'limits' | 'gc' | 'drain' | 'stats' | 'peers' | 'evict' | 'connect' |
  'invite' | 'invites' | 'revokeInvite'

const OK = { ok: true } as const

export function clusterHandlers (engine: Engine): Pick<Handlers, ClusterRoute> {
  return {
    status: async () => engine.status(),
    pause: async ({ req, params }) => {
      const { forMs } = await readJson(req)
      if (forMs !== undefined && (typeof forMs !== 'number' || !Number.isFinite(forMs) || forMs < 0)) {
        throw badRequest('forMs must be a non-negative number of milliseconds')
      }
      await engine.pause(params[0], forMs)
      return OK
    },
    resume: async ({ req, params }) => {
      await readJson(req)
      await engine.resume(params[0])
      return OK
    },
    limit: async ({ req, params }) => {
      const { limit } = await readJson(req)
      if (limit !== null && typeof limit !== 'number') throw badRequest('limit must be a number, or null to lift it')
      await engine.limit(params[0], limit)
      return OK
    },
    limits: async () => ({ limits: await engine.limits() }),
    gc: async ({ req }) => {
      const { olderThanMs, dryRun } = await readJson(req)
      if (typeof olderThanMs !== 'number' || !Number.isSafeInteger(olderThanMs) || olderThanMs < 0) {
        throw badRequest('olderThanMs must be a whole number of milliseconds')
      }
      return await engine.gc(olderThanMs, dryRun === true)
    },
    drain: async ({ req }) => {
      const { peer } = await readJson(req)
      if (peer !== undefined && typeof peer !== 'string') throw badRequest('peer must be a string')
      await engine.drain(peer)
      return OK
    },
    stats: async () => await engine.stats(),
    peers: async () => ({ peers: await engine.peers() }),
    evict: async ({ params }) => { await engine.evict(params[0]); return OK },
    connect: async ({ req }) => {
      const { addr } = await readJson(req)
      if (typeof addr !== 'string') throw badRequest('addr must be a string (a multiaddr)')
      return await engine.connect(addr)
    },
    invite: async ({ req }) => await engine.invite(inviteOptions(await readJson(req))),
    invites: async () => ({ invites: await engine.invites() }),
    revokeInvite: async ({ params }) => { await engine.revokeInvite(params[0]); return OK }
  }
}

function inviteOptions (body: { ttlMs?: unknown, uses?: unknown }): { ttlMs: number, uses: number } {
  const ttlMs = body.ttlMs ?? 3_600_000
  const uses = body.uses ?? 1
  if (!Number.isInteger(ttlMs) || (ttlMs as number) <= 0 || !Number.isInteger(uses) || (uses as number) <= 0) {
    throw new UsageError('ttlMs and uses must be positive integers')
  }
  if ((ttlMs as number) > MAX_INVITE_TTL_MS) throw new UsageError(`ttlMs must be at most ${MAX_INVITE_TTL_MS} (365 days)`)
  return { ttlMs: ttlMs as number, uses: uses as number }
}
