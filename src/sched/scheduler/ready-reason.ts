import type { JobSpec, PeerIdString } from '../../types.js'
import type { JobTable } from '../table.js'
import type { Claims, PeerLoad } from '../claims.js'
import { memoryReason } from '../placement.js'
import { knownEpoch } from './pass.js'

/** This node as the mesh sees it, beside the live peers. */
export interface OwnLoad {
  self: PeerIdString
  slots: number
  running: number
  draining: boolean
  tags: string[]
  memFree?: number
}

type Node = PeerLoad & { memFree?: number }

/** Why a ready job is not running yet, as far as this node can tell for the whole mesh. */
export function readyReason (spec: JobSpec, table: JobTable, claims: Claims, own: OwnLoad): string {
  const lease = claims.leaseOf(spec.id)
  if (lease != null && lease.peer !== own.self && claims.bars(spec.id, knownEpoch(table, spec.id))) return `claimed by ${lease.peer}`
  const cap = claims.fullCap(spec.id)
  if (cap != null) return `${cap.key} is at its limit of ${cap.limit} running jobs`
  const { self, ...load } = own
  const nodes: Node[] = [{ peer: self, ...load }, ...claims.livePeers()]
  const able = nodes.filter(n => n.slots >= spec.cores && spec.tags.every(t => n.tags.includes(t)))
  if (able.length === 0) {
    return spec.tags.length > 0
      ? `no live node has tag ${spec.tags.join(',')} and ${spec.cores} slots`
      : `needs ${spec.cores} slots; no live node has that many`
  }
  if (able.every(n => n.draining)) return 'every node that could run it is draining'
  const memory = memoryReason(spec, able)
  if (memory !== undefined) return memory
  const busy = able.filter(n => !n.draining).reduce((sum, n) => sum + n.running, 0)
  const total = able.filter(n => !n.draining).reduce((sum, n) => sum + n.slots, 0)
  return busy >= total ? `all slots busy (${busy}/${total})` : 'waiting to be claimed'
}
