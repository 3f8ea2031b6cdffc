/** The record of a job that clients see (cli.md's JSON shape), from its facts and derived state. */
import { JobState } from '../types.js'
import type { Attempt, AttemptView, JobSpec, JobView } from '../types.js'
import { isoTime, specView } from './fields.js'

/** What a record is made of: a job's facts and its derived state, as the job table holds them. */
export interface JobViewSource {
  facts: { spec: JobSpec, attempts: Map<string, Attempt> }
  derived: { state: JobState, reason?: string, attempt?: Attempt }
}

function attemptView (a: Attempt, lost: boolean): AttemptView {
  return {
    epoch: a.epoch,
    node: a.node,
    claimedAt: isoTime(a.claimedAt) as string,
    startedAt: isoTime(a.startedAt),
    endedAt: isoTime(a.endedAt),
    exitCode: a.exitCode,
    signal: a.signal,
    failReason: a.failReason ?? (lost ? 'lost' : undefined),
    lost: lost || undefined,
    alone: a.alone,
    uncontained: a.uncontained,
    stdoutBytes: a.stdoutBytes,
    stderrBytes: a.stderrBytes,
    truncated: a.truncated,
    tail: a.tail,
    peakRssKb: a.peakRssKb,
    cpuMs: a.cpuMs
  }
}

/**
 * The JSON shape of a job (cli.md) from its facts and derived state. `readyReason` says why a
 * ready job is not running yet (slots, tags, draining), which only the scheduler knows.
 */
export function toJobView (entry: JobViewSource, readyReason: (spec: JobSpec) => string): JobView {
  const { spec } = entry.facts
  const { derived } = entry
  const attempts = [...entry.facts.attempts.values()].filter(a => a.withdrawn !== true).sort((a, b) => a.epoch - b.epoch)
  const current = derived.attempt
  return {
    ...specView(spec),
    state: derived.state,
    reason: derived.state === JobState.ready ? readyReason(spec) : derived.reason,
    exitCode: derived.state === JobState.running ? undefined : current?.exitCode,
    node: current?.node,
    startedAt: isoTime(current?.startedAt),
    endedAt: derived.state === JobState.running ? undefined : isoTime(current?.endedAt),
    attempts: attempts.map(a => attemptView(a, a.endedAt == null && a !== current && derived.state !== JobState.running))
  }
}
