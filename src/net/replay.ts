/** Where a gossip message stands in its author's sequence. */
export interface ReplayStamp {
  /** Random per process start. */
  boot: string
  /** Increases by one per message within a boot. */
  seq: number
  /** The author's wall-clock time of sending, in ms: orders its boots (status messages have it). */
  at?: number
}

/**
 * Drops replays of a peer's gossip after gossipsub's seen-cache forgot them (2 minutes): within one
 * boot, a `seq` not above the last heard; from another boot, a message sent before the last one
 * heard (by the author's own clock, so that skew between hosts does not matter). A peer that once
 * sent stamped messages is not heard without a stamp again (replays from before its upgrade). The
 * first message of a peer not heard since this node started is taken as it comes.
 */
export class ReplayGuard {
  private readonly last = new Map<string, ReplayStamp | undefined>()

  /** Whether the message is new; if it is, it becomes the last heard of its peer. */
  fresh (peer: string, stamp: ReplayStamp | undefined): boolean {
    if (this.last.has(peer) && !newer(stamp, this.last.get(peer))) return false
    this.last.set(peer, stamp)
    return true
  }
}

function newer (stamp: ReplayStamp | undefined, last: ReplayStamp | undefined): boolean {
  if (last === undefined) return true
  if (stamp === undefined) return false
  if (stamp.boot === last.boot) return stamp.seq > last.seq
  return stamp.at === undefined || last.at === undefined || stamp.at > last.at
}
