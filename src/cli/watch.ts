/**
 * Follows jobs through the node's event stream, for `wait` and `sub --wait`.
 */
import { constants } from 'node:os'
import type { NodeClient } from '../api/node-client.js'
import { NodeUnreachableError } from '../errors.js'
import { isTerminal, type JobView, type NodeEvent } from '../types.js'

/** The latest known view of a job; `null` once it has been removed. */
export type Known = JobView | null | undefined

export function settled (job: Known): boolean {
  return job === null || (job !== undefined && isTerminal(job.state))
}

export class JobWatch {
  private readonly known = new Map<string, JobView | null>()
  private waiters: Array<() => void> = []
  private failure: Error | undefined

  private constructor () {}

  /** Subscribes first: changes made after this resolves are all seen. */
  static async open (client: Pick<NodeClient, 'openEvents'>, signal: AbortSignal): Promise<JobWatch> {
    const watch = new JobWatch()
    const events = await client.openEvents(signal)
    void watch.pump(events, signal)
    return watch
  }

  /** Records a state fetched after subscribing, unless an event already told something newer. */
  seed (job: JobView): void {
    if (!this.known.has(job.id)) this.known.set(job.id, job)
  }

  get (id: string): Known {
    return this.known.get(id)
  }

  /** Resolves once `condition` holds; rejects if the event stream ends first. */
  async until (condition: () => boolean): Promise<void> {
    while (!condition()) {
      if (this.failure !== undefined) throw this.failure
      await new Promise<void>(resolve => this.waiters.push(resolve))
    }
  }

  private async pump (events: AsyncIterable<NodeEvent>, signal: AbortSignal): Promise<void> {
    try {
      for await (const event of events) {
        if (event.type === 'job') this.known.set(event.job.id, event.job)
        else if (event.type === 'removed') this.known.set(event.id, null)
        else continue
        this.wake()
      }
      this.failure = new NodeUnreachableError('the node closed the event stream')
    } catch (err) {
      this.failure = signal.aborted
        ? new Error('stopped watching')
        : new NodeUnreachableError(`lost the node's event stream: ${(err as Error).message}`)
    }
    this.wake()
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const resolve of waiters) resolve()
  }
}

/** 128 + N for a job whose last counted attempt a signal N ended, as shells report it; undefined otherwise. */
export function signalStatus (job: Known): number | undefined {
  const signal = job?.attempts.filter(a => a.lost !== true && a.failReason !== 'lost').at(-1)?.signal
  const number = signal === undefined ? undefined : (constants.signals as Record<string, number | undefined>)[signal]
  return number === undefined || job == null || !isTerminal(job.state) || job.state === 'done' ? undefined : 128 + number
}

/** Exit status and, for failures, a one-line explanation. */
export function outcome (id: string, job: Known): { ok: boolean, message?: string } {
  if (job === null) return { ok: false, message: `job ${id} was removed` }
  if (job === undefined) return { ok: false, message: `job ${id} not found` }
  if (job.state === 'done') return { ok: true }
  const why = job.exitCode !== undefined ? `exit ${job.exitCode}` : job.reason ?? 'no reason given'
  return { ok: false, message: `job ${id} ${job.state}: ${why}` }
}
