import type { Ledger } from '../../crdt/ledger.js'
import { SegmentMap, attemptKey, segmentOf } from '../../crdt/facts.js'
import type { Attempt } from '../../types.js'

/** Writes an attempt of this node to the ledger (its start, its end, or its loss after a crash). */
export async function writeAttempt (ledger: Ledger, attempt: Attempt, sync: boolean): Promise<void> {
  const key = attemptKey(attempt.job, attempt.epoch, attempt.node)
  await ledger.put([{ doc: segmentOf(attempt.job) as string, map: SegmentMap.attempts, key, value: attempt }], { sync })
}
