import { describe, expect, it } from 'vitest'
import { Lifecycle } from '../src/lifecycle.js'
import type { Startable } from '../src/lifecycle.js'

/** Components that write what happens to them into one journal; `fails` names the steps that throw. */
function journaled (names: string[], fails: string[] = []): { journal: string[], components: Record<string, Startable> } {
  const journal: string[] = []
  const step = (what: string) => async (): Promise<void> => {
    await Promise.resolve() // a real await between steps, as components have
    if (fails.includes(what)) throw new Error(`${what} broke`)
    journal.push(what)
  }
  const components = Object.fromEntries(names.map(name => [name, { start: step(`start ${name}`), stop: step(`stop ${name}`) }]))
  return { journal, components }
}

describe('Lifecycle', () => {
  it('starts components in the order listed and stops them in reverse', async () => {
    const { journal, components } = journaled(['store', 'ledger', 'mesh', 'server'])
    const parts = new Lifecycle(components)
    await parts.start()
    expect(journal).toEqual(['start store', 'start ledger', 'start mesh', 'start server'])
    await parts.stop()
    expect(journal.slice(4)).toEqual(['stop server', 'stop mesh', 'stop ledger', 'stop store'])
  })

  it('stops what already started when a start fails, and rethrows that error', async () => {
    const { journal, components } = journaled(['store', 'ledger', 'mesh', 'server'], ['start mesh'])
    const parts = new Lifecycle(components)
    await expect(parts.start()).rejects.toThrow('start mesh broke')
    expect(journal).toEqual(['start store', 'start ledger', 'stop ledger', 'stop store'])
  })

  it('keeps the start error when a stop during the rollback fails too', async () => {
    const { journal, components } = journaled(['store', 'ledger', 'mesh'], ['start mesh', 'stop ledger'])
    await expect(new Lifecycle(components).start()).rejects.toThrow('start mesh broke')
    expect(journal).toEqual(['start store', 'start ledger', 'stop store'])
  })

  it('stops every component even if one fails to stop, then rejects with that failure', async () => {
    const { journal, components } = journaled(['store', 'ledger', 'mesh'], ['stop ledger'])
    const parts = new Lifecycle(components)
    await parts.start()
    await expect(parts.stop()).rejects.toThrow('stop ledger broke')
    expect(journal.slice(3)).toEqual(['stop mesh', 'stop store'])
  })

  it('stops each component once, however often stop is called', async () => {
    const { journal, components } = journaled(['store', 'mesh'])
    const parts = new Lifecycle(components)
    await parts.start()
    await Promise.all([parts.stop(), parts.stop()])
    await parts.stop()
    expect(journal.filter(line => line.startsWith('stop'))).toEqual(['stop mesh', 'stop store'])
  })

  it('accepts components whose steps are synchronous', async () => {
    const journal: string[] = []
    const parts = new Lifecycle({
      timer: { start: () => { journal.push('start timer') }, stop: () => { journal.push('stop timer') } },
      socket: { start: async () => { journal.push('start socket') }, stop: async () => { journal.push('stop socket') } }
    })
    await parts.start()
    await parts.stop()
    expect(journal).toEqual(['start timer', 'start socket', 'stop socket', 'stop timer'])
  })
})
