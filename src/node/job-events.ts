/**
 * `meshq events`: one event per change of a job's state, derived from the job's facts, so that
 * every replica reports the same events whichever node wrote the facts. `JobEventLog` turns the
 * job table's changes into new events (cluster-wide: remote facts count as much as local ones)
 * and keeps the recent ones for the history.
 */
import { ControlKind, FailReason, JobEventKind, JobState } from '../types.js'
import type { Attempt, Control, JobEvent, JobId, JobView, PeerIdString } from '../types.js'
import type { EventQuery } from '../api/engine.js'

type AttemptFacts = Pick<
  Attempt, 'epoch' | 'node' | 'basis' | 'claimedAt' | 'startedAt' | 'endedAt' | 'exitCode' | 'signal' | 'failReason'
> & {
  /** Open, and its lease has lapsed as this replica sees it. */
  lost: boolean
  running: boolean
}

/** What a job's events are derived from. */
export interface EventFacts {
  id: JobId
  name?: string
  group?: string
  retries: number
  submitter?: PeerIdString
  submittedAt: number
  /** Not withdrawn, in epoch order. */
  attempts: AttemptFacts[]
  controls: Control[]
}

/** An event with what identifies it among its job's events (its time may be refined later). */
interface KeyedEvent { key: string, event: JobEvent }

/**
 * A job's facts from its record, plus what only the job table has (who submitted it, the controls,
 * each attempt's basis); a sealed job's record alone lacks those, so its removal, kill and retry
 * requests are not reported.
 */
export function eventFacts (
  view: JobView, table?: { submitter: PeerIdString, controls: Iterable<Control>, basis: (epoch: number, node: PeerIdString) => number }
): EventFacts {
  const time = (iso: string | undefined): number | undefined => iso === undefined ? undefined : Date.parse(iso)
  return {
    id: view.id,
    name: view.name,
    group: view.group,
    retries: view.retries,
    submitter: table?.submitter,
    submittedAt: Date.parse(view.submittedAt),
    attempts: view.attempts.map(a => ({
      epoch: a.epoch,
      node: a.node,
      basis: table?.basis(a.epoch, a.node) ?? 0,
      claimedAt: Date.parse(a.claimedAt),
      startedAt: time(a.startedAt),
      endedAt: time(a.endedAt),
      exitCode: a.exitCode,
      signal: a.signal,
      failReason: a.failReason,
      lost: a.lost === true,
      running: view.state === JobState.running && a.endedAt === undefined && a.lost !== true
    })),
    controls: [...table?.controls ?? []].sort((a, b) => a.lamport - b.lamport || (a.by < b.by ? -1 : 1))
  }
}

const succeeded = (a: AttemptFacts): boolean => a.endedAt != null && a.exitCode === 0 && a.failReason == null
const isLost = (a: AttemptFacts): boolean => a.lost || a.failReason === FailReason.lost

/** Every event of one job so far, in the order they happened. `now` times a lapse nothing else dates. */
export function jobEvents (facts: EventFacts, now: number): KeyedEvent[] {
  const events: KeyedEvent[] = []
  const add = (key: string, at: number, event: JobEventKind, more: Partial<JobEvent> = {}): void => {
    events.push({ key, event: { at: new Date(at).toISOString(), job: facts.id, event, ...more, name: facts.name, group: facts.group } })
  }
  add('submitted', facts.submittedAt, JobEventKind.submitted, { node: facts.submitter })
  facts.attempts.forEach((a, i) => {
    const id = `${a.epoch}:${a.node}`
    const about = { node: a.node, epoch: a.epoch }
    if (a.startedAt != null) add(`start ${id}`, a.startedAt, JobEventKind.started, about)
    if (isLost(a)) {
      // keyed apart from other ends: a run seen lost here may still end well (a late success counts)
      const at = a.endedAt ?? facts.attempts[i + 1]?.claimedAt ?? now
      const detail = 'its node stopped or was cut off: runs again'
      add(`lost ${id}`, at, JobEventKind.lost, { ...about, failReason: FailReason.lost, detail })
    } else if (a.endedAt != null) {
      const [kind, result] = attemptEnd(a, facts)
      add(`end ${id}`, a.endedAt, kind, result)
    }
  })
  for (const c of facts.controls) {
    const key = `control ${c.lamport}:${c.by}`
    const about = { node: c.by, detail: 'on request' }
    if (c.kind === ControlKind.retry) add(key, c.at, JobEventKind.retried, about)
    else if (c.kind === ControlKind.remove) add(key, c.at, JobEventKind.removed, about)
    else if (c.kind === ControlKind.kill && !killedARun(c, facts)) add(key, c.at, JobEventKind.killed, about)
  }
  return events.sort((a, b) => Date.parse(a.event.at) - Date.parse(b.event.at))
}

/** How an ended attempt ended: a failure with retries left is `retried`, as the job runs again. */
function attemptEnd (a: AttemptFacts, facts: EventFacts): [JobEventKind, Partial<JobEvent>] {
  const result = { node: a.node, epoch: a.epoch, exitCode: a.exitCode, signal: a.signal, failReason: a.failReason }
  if (succeeded(a)) return [JobEventKind.done, result]
  if (a.failReason === FailReason.killed) return [JobEventKind.killed, result]
  const failures = failuresInRound(a, facts)
  return failures > facts.retries
    ? [JobEventKind.failed, result]
    : [JobEventKind.retried, { ...result, detail: `retry ${failures}/${facts.retries}` }]
}

/** The failures counted against `--retries` up to `a`, since the retry request `a` was claimed after (as derive.ts counts). */
function failuresInRound (a: AttemptFacts, facts: EventFacts): number {
  const round = Math.max(0, ...facts.controls.filter(c => c.kind === ControlKind.retry && c.lamport <= a.basis).map(c => c.lamport))
  return facts.attempts.filter(b => b.epoch <= a.epoch && b.basis >= round && b.endedAt != null && !isLost(b) && !succeeded(b)).length
}

/** A kill of a running job is reported when the run ends (by its node), not when it is requested. */
function killedARun (kill: Control, facts: EventFacts): boolean {
  return facts.attempts.some(a => a.basis < kill.lamport && (a.running || a.failReason === FailReason.killed))
}

/** How many recent events a node keeps for `meshq events` without `--follow`. */
export const RECENT_EVENTS = 10_000

/**
 * Turns job changes into new events. A job's facts are re-read after each change and compared with
 * the events already reported for it; changes that only load history from disk (start-up, a sealed
 * segment loaded back) report nothing.
 */
export class JobEventLog {
  private readonly now: () => number
  /**
   * Keys of the events reported per job entry: entries dropped from memory take theirs along. An
   * exact-size list, not a Set: a job has a few, and a Set per queued job costs about 150 bytes more.
   */
  private readonly reported = new WeakMap<object, string[]>()
  private readonly changed = new Map<object, () => EventFacts>()
  private settleQueued = false
  private recent: JobEvent[] = []
  private readonly listeners = new Set<(event: JobEvent) => void>()

  constructor (now: () => number) {
    this.now = now
  }

  /** Notes that a job changed; its new events are reported when `settle` runs (at the latest in a microtask). */
  touch (entry: object, facts: () => EventFacts): void {
    this.changed.set(entry, facts)
    if (this.settleQueued) return
    this.settleQueued = true
    queueMicrotask(() => this.settle(true))
  }

  /** Reports the new events of the jobs changed since the last call (or only records them, for loaded history). */
  settle (report: boolean): void {
    this.settleQueued = false
    const fresh: JobEvent[] = []
    for (const [entry, facts] of this.changed) fresh.push(...this.diff(entry, facts()))
    this.changed.clear()
    if (!report) return
    for (const event of fresh) for (const listener of this.listeners) listener(event)
  }

  subscribe (listener: (event: JobEvent) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** The latest events, oldest first. */
  history (query: EventQuery): JobEvent[] {
    const wanted = this.recent.filter(e => query.kinds.length === 0 || query.kinds.includes(e.event))
    return query.limit === 0 ? [] : wanted.sort((a, b) => Date.parse(a.at) - Date.parse(b.at)).slice(-query.limit)
  }

  private diff (entry: object, facts: EventFacts): JobEvent[] {
    const reported = this.reported.get(entry) ?? []
    const keys: string[] = []
    const fresh: JobEvent[] = []
    for (const { key, event } of jobEvents(facts, this.now())) {
      if (reported.includes(key) || keys.includes(key)) continue
      keys.push(key)
      fresh.push(event)
    }
    if (keys.length > 0) this.reported.set(entry, reported.concat(keys)) // a list of its own length: a grown one keeps spare room
    this.remember(fresh)
    return fresh
  }

  private remember (events: JobEvent[]): void {
    this.recent.push(...events)
    if (this.recent.length > 2 * RECENT_EVENTS) this.recent = this.recent.slice(-RECENT_EVENTS)
  }
}
