/**
 * Components with one lifecycle, as js-libp2p's `Startable`: a node declares its parts once, in
 * dependency order, and `Lifecycle` starts them in that order and stops them in reverse.
 */
import createDebug from 'debug'

const log = createDebug('meshq:lifecycle')

export interface Startable {
  start: () => Promise<void> | void
  stop: () => Promise<void> | void
}

/** A step of a start that leaves nothing running, so nothing to stop. */
export function startupStep (start: () => Promise<void>): Startable {
  return { start, stop: () => {} }
}

/**
 * Starts components in the order their names are listed and stops them in reverse. A start that
 * fails stops the components already started, then rethrows its own error (the one to report).
 * A stop that fails does not keep the others running: every started component is stopped, and
 * `stop` then rejects with the first failure.
 */
export class Lifecycle {
  private readonly components: ReadonlyArray<[string, Startable]>
  private readonly started: Array<[string, Startable]> = []
  private stopping?: Promise<void>

  /** Components by name, in start order (an object's string keys keep the order they were written in). */
  constructor (components: Readonly<Record<string, Startable>>) {
    this.components = Object.entries(components)
  }

  /** Starts every component once. */
  async start (): Promise<void> {
    for (const [name, component] of this.components) {
      try {
        await component.start()
      } catch (err) {
        log('%s failed to start: %s', name, (err as Error).message)
        await this.stop().catch(() => {}) // logged there; the start's error is the one that matters
        throw err
      }
      this.started.push([name, component])
    }
  }

  /** Stops what started, last first; later calls share the first call's outcome. */
  async stop (): Promise<void> {
    this.stopping ??= this.stopStarted()
    await this.stopping
  }

  private async stopStarted (): Promise<void> {
    const failures: unknown[] = []
    for (const [name, component] of [...this.started].reverse()) {
      try {
        await component.stop()
      } catch (err) {
        log('%s failed to stop: %s', name, (err as Error).message)
        failures.push(err)
      }
    }
    this.started.length = 0
    if (failures.length > 0) throw failures[0]
  }
}
