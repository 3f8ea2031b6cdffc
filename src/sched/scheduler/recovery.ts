import createDebug from 'debug'
import { FailReason } from '../../types.js'
import type { Attempt, PeerIdString } from '../../types.js'
import type { Clock } from '../../clock.js'
import { attemptKey } from '../../crdt/facts.js'
import { killLeftover } from '../../exec/executor.js'
import type { JobTable } from '../table.js'
import type { IntentLog } from './intent-log.js'

const log = createDebug('meshq:sched')

export interface RecoveryInit {
  self: PeerIdString
  clock: Clock
  table: Pick<JobTable, 'get' | 'refresh'>
  intents: IntentLog
  writeAttempt: (attempt: Attempt, sync: boolean) => Promise<void>
  /** Kills a leftover process group if its leader is still the process that was started (src/exec/executor.ts). */
  kill?: (pid: number, startTime: string) => boolean
}

/**
 * Kills what a previous run of this node left behind (from the intent log), records those attempts
 * as lost and deletes their intents. Returns how many intents there were.
 */
export async function recoverLeftovers (init: RecoveryInit): Promise<number> {
  const { self, clock, table, intents, kill = killLeftover } = init
  const leftovers = await intents.leftovers()
  for (const intent of leftovers) {
    if (intent.pid != null && intent.startTime != null && kill(intent.pid, intent.startTime)) {
      log('killed leftover process group %d of %s', intent.pid, intent.job)
    }
    const attempt = table.get(intent.job)?.facts.attempts.get(attemptKey(intent.job, intent.epoch, self))
    if (attempt != null && attempt.endedAt == null) {
      await init.writeAttempt({ ...attempt, endedAt: clock.now(), failReason: FailReason.lost }, true)
    }
  }
  await intents.clear(leftovers)
  table.refresh(leftovers.map(i => i.job))
  return leftovers.length
}
