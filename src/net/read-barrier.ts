import createDebug from 'debug'
import { NotCaughtUpError } from '../errors.js'
import type { Ledger } from '../crdt/ledger.js'
import type { HeadsService } from './heads.js'
import type { Membership } from './membership.js'
import type { SyncService } from './sync.js'

const log = createDebug('meshq:mesh')

export interface ReadBarrierInit {
  self: string
  ledger: Ledger
  membership: Membership
  sync: SyncService
  heads: HeadsService
  /** The peers connected now. */
  connected: () => Set<string>
}

/**
 * A read barrier: asks every reachable active member what it holds now, then waits until this
 * replica holds all of it, so that a job or group acknowledged there is known here. Resolves
 * with the members that could not be asked; throws NotCaughtUpError after `timeoutMs`.
 */
export async function catchUp (init: ReadBarrierInit, timeoutMs: number): Promise<{ unreachable: string[] }> {
  const { ledger, sync, heads } = init
  const signal = AbortSignal.timeout(timeoutMs)
  const connected = init.connected()
  const others = init.membership.activeIds().filter(p => p !== init.self)
  const unreachable: string[] = []
  const asked = await Promise.all(others.map(async peer => {
    if (!connected.has(peer)) {
      unreachable.push(peer)
      return undefined
    }
    void sync.connect(peer) // a session that ended while the connection stayed up would never cover anything
    return await heads.ask(peer, signal).then(frontier => ({ peer, frontier }), err => {
      log('cannot ask %s for its heads: %s', peer, (err as Error).message)
      unreachable.push(peer)
      return undefined
    })
  }))
  for (const item of asked) {
    if (item == null) continue
    while (!ledger.covers(item.frontier)) {
      if (signal.aborted) {
        const within = `within ${timeoutMs / 1000} s`
        throw new NotCaughtUpError(`this node has not received everything member ${item.peer} holds ${within}; try again`)
      }
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  }
  // covered in the documents, but perhaps not yet in the job table: a read would miss the job
  await ledger.applied()
  return { unreachable }
}
