/**
 * `meshq top` in a real terminal: tmux runs it against a real node, the test types keys and reads
 * the screen. Skipped when tmux is not installed. Also: the snapshot printed without a terminal.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { JobView } from '../src/types.js'
import { CLI, json, meshq, ok, startNode, type TestNode } from './cluster.js'
import { waitFor } from './helpers.js'

const run = promisify(execFile)
const SOCKET = `meshq-top-test-${process.pid}`
const tmux = async (...args: string[]): Promise<string> => (await run('tmux', ['-L', SOCKET, ...args])).stdout
const hasTmux = await run('tmux', ['-V']).then(() => true, () => false)
if (!hasTmux) console.warn('test/tui-tmux.test.ts: tmux is not installed: skipping the real-terminal tests of meshq top')
const quote = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`

let node: TestNode

beforeAll(async () => {
  node = await startNode({ args: ['--slots', '2'] })
}, 120_000)

afterAll(async () => {
  if (hasTmux) await tmux('kill-server').catch(() => {})
  await node?.cleanup()
})

describe('meshq top without a terminal', () => {
  it('prints one snapshot (header and jobs) and exits 0; --once --json prints JSON', async () => {
    const id = (await ok(node.home, ['sub', '--group', 'snap', '--', 'true'])).trim()
    const text = await meshq(node.home, ['top'])
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/^cluster \S+\s+node \S+ running\s+members \d+\/\d+ up/)
    expect(text.stdout).toMatch(/\nID\s+STATE\s+GROUP\s+NAME\/COMMAND/)
    expect(text.stdout).toMatch(new RegExp(`\\n${id}\\s+\\w+\\s+snap\\s+true`))
    const snapshot = await json<{ status: { id: string }, stats: object, peers: unknown[], jobs: JobView[] }>(node.home, ['top', '--once'])
    expect(snapshot.jobs.map(j => j.id)).toContain(id)
    expect(Object.keys(snapshot)).toEqual(['status', 'stats', 'peers', 'jobs'])
  })
})

/** `meshq top` on `home` in a new tmux session, with ways to read its screen and type. */
async function openTop (session: string, home: string, columns: number, rows: number): Promise<{
  until: (test: string | RegExp, timeout?: number) => Promise<string>
  type: (text: string) => Promise<void>
  press: (...keys: string[]) => Promise<void>
}> {
  const top = `${quote(process.execPath)} ${quote(CLI)} top; echo TOP-EXITED; sleep 600`
  await tmux('new-session', '-d', '-s', session, '-x', String(columns), '-y', String(rows), '-e', `MESHQ_HOME=${home}`, `sh -c ${quote(top)}`)
  const screen = async (): Promise<string> => await tmux('capture-pane', '-p', '-t', session)
  return {
    until: async (test, timeout = 60_000) => {
      let last = ''
      try {
        return await waitFor(async () => {
          last = await screen()
          return (typeof test === 'string' ? last.includes(test) : test.test(last)) ? last : undefined
        }, { timeout, interval: 200, what: String(test) })
      } catch (err) {
        throw new Error(`${(err as Error).message} on the screen; it showed:\n${last}`)
      }
    },
    type: async text => { await tmux('send-keys', '-t', session, '-l', text) },
    press: async (...keys) => { await tmux('send-keys', '-t', session, ...keys) }
  }
}

describe.skipIf(!hasTmux).each([[80, 24], [160, 48]])(`meshq top in tmux at %i×%i${hasTmux ? '' : ' (skipped: tmux is not installed)'}`, (columns, rows) => {
  it('submits through the form, kills a job with k y, and quits with q', async () => {
    const { until, type, press } = await openTop(`top-${columns}x${rows}`, node.home, columns, rows)
    await until(/^cluster \S+/m)
    await until(/\? help {2}q quit/)

    await press('s')
    await until('Submit a job')
    const word = `from-the-form-${columns}`
    await type(`echo ${word}`)
    await press('Enter')
    const submitted = /submitted (\S+)/.exec(await until(/submitted \S+/))?.[1] as string
    await until(new RegExp(`${submitted}\\s+\\w+\\s+-\\s+echo ${word}`))
    expect((await json<JobView>(node.home, ['show', submitted])).cmd).toEqual(['echo', word])

    const seconds = String(300 + columns)
    const sleeper = (await ok(node.home, ['sub', '--', 'sleep', seconds])).trim()
    await until(sleeper)
    await press('/')
    await type(`sleep ${seconds}`)
    await press('Enter')
    await until(new RegExp(`Jobs 1 of \\d+[^\\n]*\\n.*\\n> ${sleeper}`))
    await press('k')
    const asking = await until(`kill ${sleeper} (sleep ${seconds})? [y/n]`)
    expect(asking.split('\n')[0]).toMatch(/^cluster /)
    await press('y')
    await until(`killed ${sleeper}`)
    await waitFor(async () => (await json<JobView>(node.home, ['show', sleeper])).state === 'killed', { timeout: 30_000, what: `${sleeper} killed` })
    await until(new RegExp(`> ${sleeper}\\s+killed`))

    await press('q')
    const after = await until('TOP-EXITED', 30_000)
    expect(after).not.toContain('? help')
  }, 240_000)
})

describe.skipIf(!hasTmux)(`meshq top in tmux when the node restarts${hasTmux ? '' : ' (skipped: tmux is not installed)'}`, () => {
  it('says the node is unreachable, then carries on with the restarted node', async () => {
    const first = await startNode()
    let second: TestNode | undefined
    try {
      const before = (await ok(first.home, ['sub', '--', 'echo', 'before-restart'])).trim()
      const { until } = await openTop('top-restart', first.home, 100, 30)
      await until(before)
      expect(await first.kill('SIGTERM')).toBe(0)
      await until('node unreachable, reconnecting…')
      second = await startNode({ home: first.home })
      const after = (await ok(first.home, ['sub', '--', 'echo', 'after-restart'])).trim()
      // both jobs, and the status line cleared (the header's poll may recover a moment after the feed)
      await until(new RegExp(`^(?![\\s\\S]*unreachable)[\\s\\S]*${after}[\\s\\S]*${before}`))
    } finally {
      await second?.cleanup()
      await first.cleanup()
    }
  }, 180_000)
})
