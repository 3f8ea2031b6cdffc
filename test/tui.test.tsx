/** The dashboard's components, rendered by Ink into a fake terminal, driven by keys, against a fake node. */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { cleanup, render } from 'ink-testing-library'
import { ApiError } from '../src/api/client.js'
import type { JobId } from '../src/types.js'
import { App } from '../src/tui/App.js'
import { FIRST_PAGE } from '../src/tui/live.js'
import { runTop } from '../src/tui/main.js'
import { snapshot, snapshotText } from '../src/tui/snapshot.js'
import { waitFor } from './helpers.js'
import { Channel, FakeClient, job, OTHER, running } from './tui-fixtures.js'

const KEYS = { down: '\x1b[B', up: '\x1b[A', enter: '\r', esc: '\x1b', tab: '\t' }

function jobs (): ReturnType<typeof job>[] {
  return [
    running(3, { group: 'build', cmd: ['make', '-j4'] }),
    job(2, { state: 'failed', exitCode: 2, group: 'test', cmd: ['npm', 'test'] }),
    job(1, { cmd: ['echo', 'hello'], attempts: [{ epoch: 1, node: running(0).node!, claimedAt: running(0).submittedAt, exitCode: 0 }], exitCode: 0 })
  ]
}

/** Renders the dashboard in a `columns`×`rows` terminal; `frame()` is the latest frame. */
async function start (client = new FakeClient(jobs()), columns = 100, rows = 24, shown = 'seg-1') {
  const app = render(<App client={client.api} cwd='/work' />)
  Object.defineProperty(app.stdout, 'columns', { value: columns })
  Object.defineProperty(app.stdout, 'rows', { value: rows })
  app.stdout.emit('resize')
  const frame = (): string => app.lastFrame() ?? ''
  /** Waits until the frame satisfies `test` (a substring or a predicate). */
  const until = async (test: string | RegExp | ((frame: string) => boolean), what = String(test)): Promise<string> =>
    await waitFor(() => {
      const f = frame()
      return (typeof test === 'string' ? f.includes(test) : test instanceof RegExp ? test.test(f) : test(f)) ? f : undefined
    }, { timeout: 10_000, what: `a frame with ${what}; the last was:\n${frame()}` })
  /** Types keys, one write each (as a person would). */
  const keys = async (...sequence: string[]): Promise<void> => {
    for (const k of sequence) {
      app.stdin.write(k)
      await new Promise(resolve => setTimeout(resolve, 30))
    }
  }
  await until(shown)
  return { app, client, frame, until, keys }
}

const rowsOf = (frame: string): string[] => frame.split('\n').filter(line => /^[> ] seg-/.test(line))

afterEach(() => {
  cleanup()
})

describe('meshq top', () => {
  it('shows the header and the jobs table, newest first, with the first row selected', async () => {
    const { frame } = await start()
    const lines = frame().split('\n')
    expect(lines[0]).toContain('cluster c0ffee0123456789')
    expect(lines[0]).toMatch(/node AAAAAA running\s+members 2\/2 up\s+slots 1\/12 busy/)
    expect(lines[1]).toMatch(/pending 0\s+ready 0\s+running 1\s+done 2\s+failed 0\s+killed 0/)
    expect(lines[2]).toMatch(/^jobs\/s 1\.50 /)
    expect(frame()).toContain('Jobs 3')
    expect(frame()).toMatch(/ID\s+STATE\s+GROUP\s+NAME\/COMMAND\s+NODE\s+TRY\s+TIME\s+EXIT/)
    const rows = rowsOf(frame())
    expect(rows).toHaveLength(3)
    expect(rows[0]).toMatch(/^> seg-3\s+running\s+build\s+make -j4\s+AAAAAA\s+1\s+\S+\s+-$/)
    expect(rows[1]).toMatch(/^ {2}seg-2\s+failed\s+test\s+npm test\s+-\s+0\s+-\s+2$/)
    expect(rows[2]).toMatch(/^ {2}seg-1\s+done\s+-\s+echo hello/)
    expect(lines.at(-1)).toMatch(/^\s+\? help {2}q quit$/)
  })

  it('moves the selection with the arrows', async () => {
    const { keys, until } = await start()
    await keys(KEYS.down, KEYS.down)
    await until(f => rowsOf(f)[2]?.startsWith('> seg-1') === true, 'seg-1 selected')
    await keys(KEYS.up)
    await until(f => rowsOf(f)[1]?.startsWith('> seg-2') === true, 'seg-2 selected')
  })

  it('follows the event stream: new, changed and removed jobs', async () => {
    const { client, until } = await start()
    client.events.push({ type: 'job', job: job(4, { state: 'pending', reason: 'waiting for job seg-3' }) })
    client.events.push({ type: 'job', job: job(3, { state: 'done', group: 'build', cmd: ['make', '-j4'], exitCode: 0 }) })
    client.events.push({ type: 'removed', id: 'seg-2' as JobId })
    const frame = await until(f => rowsOf(f).length === 3 && f.includes('seg-4'), 'seg-4 added and seg-2 removed')
    expect(rowsOf(frame).map(r => r.slice(2, 22).replace(/\s+/g, ' ').trim())).toEqual(['seg-4 pending', 'seg-3 done', 'seg-1 done'])
  })

  it('filters by text and by state, and Esc clears', async () => {
    const { keys, until } = await start()
    await keys('/', 'm', 'a', 'k', 'e')
    let frame = await until('Jobs 1 of 3')
    expect(frame).toContain('/ filter (Enter keeps, Esc clears): make')
    expect(rowsOf(frame)).toHaveLength(1)
    await keys(KEYS.enter, KEYS.esc)
    await until('Jobs 3')
    await keys('5')
    frame = await until('state=failed')
    expect(rowsOf(frame).map(r => r.slice(0, 7))).toEqual(['> seg-2'])
    await keys('0')
    await until(f => rowsOf(f).length === 3, 'all jobs')
    await keys('g', 'b', 'u', 'i', 'l', 'd', KEYS.enter)
    frame = await until('group=build')
    expect(rowsOf(frame).map(r => r.slice(0, 7))).toEqual(['> seg-3'])
    await keys('6')
    await until('no job matches the filter')
  })

  it('shows a job in detail with its attempts and the live tail of its output', async () => {
    const { client, keys, until } = await start()
    await keys(KEYS.enter)
    let frame = await until('Job seg-3')
    expect(frame).toContain('cmd   make -j4')
    expect(frame).toContain('group build  pri 0  retries 0  cores 1  ttr 30s')
    expect(frame).toMatch(/#\s+NODE\s+STARTED\s+ENDED\s+EXIT\s+SIGNAL\s+FAIL\s+PEAK MEM/)
    expect(frame).toMatch(/1\s+AAAAAA\s+\d\d:\d\d:\d\d\s+-\s+-/)
    expect(frame).toContain('Output (stdout, e for stderr)')
    await waitFor(() => client.calls.some(c => c.path === '/jobs/seg-3/logs?stream=stdout&follow=1'))
    client.log('seg-3').push(new TextEncoder().encode('compiling a.c\ncompiling \x1b[31mb.c\x1b[0m\nlinking'))
    frame = await until('linking')
    expect(frame).toMatch(/compiling a\.c\n\s*compiling b\.c\n\s*linking/)
    await keys(KEYS.esc)
    await until('Jobs 3')
  })

  it('asks the node for the full job in detail, again when an event changes it', async () => {
    const { client, keys, until } = await start()
    await keys(KEYS.enter)
    await until('ttr 30s')
    const done = job(3, { group: 'build', cmd: ['make', '-j4'], exitCode: 0, node: running(3).node, attempts: running(3).attempts })
    client.jobs = [done, ...client.jobs.slice(1)]
    client.events.push({ type: 'job', job: done })
    await until(f => /Job seg-3 {2}done/.test(f) && f.includes('exit 0'), 'seg-3 done, exit 0')
    expect(client.calls.filter(c => c.path === '/jobs/seg-3').length).toBe(2)
  })

  it('shows why a job waits', async () => {
    const client = new FakeClient([job(1, { state: 'pending', reason: 'group nightly paused', group: 'nightly' })])
    const { keys, until } = await start(client)
    await keys(KEYS.enter)
    expect(await until('why: group nightly paused')).toContain('no attempts yet')
  })

  it('shows the peers and drains one after confirmation', async () => {
    const { client, keys, until } = await start()
    await keys(KEYS.tab)
    let frame = await until('Peers 2')
    expect(frame).toMatch(/NODE\s+STATE\s+SLOTS\s+RUNNING\s+TAGS\s+ADDRESS/)
    expect(frame).toMatch(/> AAAAAA self\s+up\s+1\/4\s+seg-3\s+-\s+\/ip4\/10\.0\.0\.1\/tcp\/7746/)
    expect(frame).toMatch(/ {2}BBBBBB\s+up\s+0\/8\s+-\s+gpu\s+\/ip4\/10\.0\.0\.2/)
    await keys(KEYS.down, 'd')
    frame = await until('[y/n]')
    expect(frame).toContain('drain node BBBBBB? It finishes its running jobs, starts no more, then exits. [y/n]')
    await keys('y')
    await until('draining node BBBBBB')
    expect(client.calls.at(-1)).toEqual({ method: 'POST', path: '/drain', body: { peer: OTHER } })
    await keys(KEYS.tab)
    await until('Jobs 3')
  })

  it('lists every key in the help', async () => {
    const { keys, until } = await start()
    await keys('?')
    const frame = await until('Keys  (? or Esc closes)')
    for (const key of ['↑ ↓', 'PgUp PgDn', 'Home', 'End', 'Enter', 'Esc', '/', 'g', '1 … 6', '0', 'f', 'Tab', 's', 'k', 'r', 'p', 'd', 'e', '?', 'q Ctrl-C']) {
      expect(frame).toMatch(new RegExp(`(^|\\s)${key.replace(/[?/.*+^$()|[\]\\]/g, '\\$&')}\\s{2,}\\S`, 'm'))
    }
    await keys(KEYS.esc)
    await until('Jobs 3')
  })

  it('submits a job through the form', async () => {
    const { client, keys, until } = await start()
    await keys('s')
    let frame = await until('Submit a job')
    expect(frame).toMatch(/> command\s+ split like a shell/)
    await keys("sh -c 'echo hi; exit 3'", KEYS.tab, 'nightly', KEYS.tab, 'x', KEYS.enter)
    frame = await until('priority must be an integer')
    await keys('\x7f', '5', KEYS.tab, 'seg-1', KEYS.tab, 'gpu', KEYS.tab, '2')
    frame = await until('> retries   2')
    expect(frame).toMatch(/ {2}command\s+sh -c 'echo hi; exit 3'\n\s+group\s+nightly\n\s+priority\s+5\n\s+after\s+seg-1\n\s+tag\s+gpu/)
    await keys(KEYS.enter)
    await until('submitted seg-999')
    expect(client.calls.at(-1)).toEqual({
      method: 'POST',
      path: '/jobs',
      body: { jobs: [{ cmd: ['sh', '-c', 'echo hi; exit 3'], group: 'nightly', pri: 5, after: ['seg-1'], tag: ['gpu'], retries: 2, cwd: '/work' }] }
    })
  })

  it('kills the selected job after y, and not after n', async () => {
    const { client, keys, until } = await start()
    await keys('k')
    await until('kill seg-3 (make -j4)? [y/n]')
    await keys('n')
    await until(f => !f.includes('[y/n]'), 'the question gone')
    expect(client.calls.some(c => c.path === '/jobs/kill')).toBe(false)
    await keys('k', 'y')
    await until('killed seg-3')
    expect(client.calls.at(-1)).toEqual({ method: 'POST', path: '/jobs/kill', body: { ids: ['seg-3'] } })
  })

  it('retries, pauses and resumes; shows API errors in the status line', async () => {
    const { client, keys, until } = await start()
    await keys('p')
    await until('paused group build')
    await keys('p')
    await until('resumed group build')
    expect(client.calls.filter(c => c.method === 'POST').map(c => c.path)).toEqual(['/groups/build/pause', '/groups/build/resume'])
    client.answers.set('POST /jobs/retry', new ApiError('BadRequestError', 'no job to retry', 400))
    await keys('r')
    await until('no job to retry')
  })

  it('says when the node is unreachable and resumes when it is back', async () => {
    const { client, until } = await start()
    client.down = true
    client.events.end()
    await until('node unreachable, reconnecting…')
    client.jobs = [...client.jobs, job(7)]
    client.events = new Channel()
    client.down = false
    const frame = await until(f => f.includes('seg-7') && !f.includes('unreachable'), 'seg-7 and no warning')
    expect(frame).toContain('Jobs 4')
  })

  it('shows the newest jobs first, then every job, with the events that came meanwhile', async () => {
    const many = Array.from({ length: FIRST_PAGE + 100 }, (_, i) => job(FIRST_PAGE + 100 - i))
    const client = new FakeClient(many)
    let release = (): void => {}
    client.fullList = new Promise(resolve => { release = resolve })
    const { until } = await start(client, 100, 24, `Jobs ${FIRST_PAGE} newest (loading every job…)`)
    client.events.push({ type: 'job', job: running(FIRST_PAGE + 200) })
    release()
    const frame = await until(`Jobs ${FIRST_PAGE + 101}\n`)
    expect(frame).not.toContain('loading')
    expect(rowsOf(frame)[0]).toMatch(new RegExp(`^> seg-${FIRST_PAGE + 200}\\s+running`))
    expect(client.calls.filter(c => c.path.startsWith('/jobs')).map(c => c.path)).toEqual([`/jobs?limit=${FIRST_PAGE}`, '/jobs'])
  })

  it('fits a narrow terminal (80×24)', async () => {
    const client = new FakeClient([running(3, { cmd: ['sh', '-c', 'a very long command line '.repeat(10)], group: 'a-rather-long-group' }), ...jobs().slice(1)])
    const { frame, keys, until } = await start(client, 80, 24)
    /** Every line fits, the header is on top, and the status line is the last of 23 (one is left free). */
    const check = (f: string): void => {
      const lines = f.split('\n')
      expect(lines).toHaveLength(23)
      expect(lines[0]).toMatch(/^cluster /)
      expect(lines[22]).toMatch(/(\? help {2}q quit|\[y\/n\])$/)
      for (const line of lines) expect(line.length).toBeLessThanOrEqual(80)
    }
    check(frame())
    expect(rowsOf(frame())[0]).toMatch(/^> seg-3\s+running\s+a-rather-…\s+sh -c 'a very long co…\s+AAAAAA/)
    for (const [key, view] of [[KEYS.enter, 'Job seg-3'], [KEYS.esc, 'Jobs 3'], ['k', '[y/n]'], ['n', 'Jobs 3'], [KEYS.tab, 'Peers 2'], ['?', 'Keys'], [KEYS.esc, 'Peers 2'], [KEYS.tab, 'Jobs 3'], ['s', 'Submit a job']]) {
      await keys(key)
      check(await until(view))
    }
  })
})

describe('meshq top --once', () => {
  it('prints the header and every job as text, or everything as JSON', async () => {
    const client = new FakeClient(jobs())
    const data = await snapshot(client.api)
    const text = snapshotText(data, 100, Date.parse(running(3).startedAt!) + 65_000)
    const lines = text.split('\n')
    expect(lines[0]).toMatch(/^cluster c0ffee0123456789\s+node AAAAAA running\s+members 2\/2 up\s+slots 1\/12 busy$/)
    expect(lines[4]).toMatch(/^ID\s+STATE/)
    expect(lines[5]).toMatch(/^seg-3\s+running\s+build\s+make -j4\s+AAAAAA\s+1\s+1m5s\s+-$/)
    expect(lines).toHaveLength(9)

    const written: string[] = []
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { written.push(String(chunk)); return true })
    try {
      expect(await runTop({ client: client.api, once: true, json: true })).toBe(0)
    } finally {
      write.mockRestore()
    }
    expect(JSON.parse(written.join(''))).toEqual({ status: data.status, stats: data.stats, peers: data.peers, jobs: data.jobs })
  })
})
