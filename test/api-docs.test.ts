/**
 * Runs every `sh` and `python` example of docs/api.md exactly as written, against a real node
 * whose home is `~/.meshq` (HOME is a temp directory) and whose TCP API is the doc's 127.0.0.1:7747.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { json, startNode } from './cluster.js'
import type { TestNode } from './cluster.js'
import { tempDir } from './helpers.js'
import type { JobView } from '../src/types.js'

const DOC = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'docs', 'api.md')
/** The event stream runs until the client stops it: here, after this long. */
const STREAM_MS = 3000

interface Example { language: 'sh' | 'python', code: string }

async function examples (): Promise<Example[]> {
  const text = await readFile(DOC, 'utf8')
  return [...text.matchAll(/^```(sh|python)\n([\s\S]*?)^```$/gm)].map(m => ({ language: m[1] as Example['language'], code: m[2] }))
}

let home: { dir: string, cleanup: () => Promise<void> }
let node: TestNode
let all: Example[]

beforeAll(async () => {
  all = await examples()
  home = await tempDir('meshq-api-docs-')
  node = await startNode({ home: join(home.dir, '.meshq'), args: ['--api', '127.0.0.1:7747'], env: { HOME: home.dir } })
}, 60_000)
afterAll(async () => {
  await node?.cleanup()
  await home?.cleanup()
})

interface Ran { code: number | null, stdout: string, stderr: string, stopped: boolean }

/** Runs one example with HOME set to the temp home; a streaming one is stopped after STREAM_MS. */
async function runExample (program: string, args: string[], streaming: boolean): Promise<Ran> {
  return await new Promise(resolve => {
    const child = spawn(program, args, { cwd: home.dir, env: { PATH: process.env.PATH, HOME: home.dir }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let stopped = false
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const timer = setTimeout(() => { stopped = true; child.kill('SIGTERM') }, streaming ? STREAM_MS : 60_000)
    child.on('exit', code => { clearTimeout(timer); resolve({ code, stdout, stderr, stopped }) })
  })
}

describe('docs/api.md examples', () => {
  it('has a setup line, shell examples and a Python example', () => {
    expect(all[0]).toEqual({ language: 'sh', code: 'S=~/.meshq/meshq.sock\n' })
    expect(all.filter(e => e.language === 'sh').length).toBeGreaterThanOrEqual(5)
    expect(all.filter(e => e.language === 'python')).toHaveLength(1)
  })

  it('runs every shell example after the setup line: no error answer, exit 0 (streams still streaming when stopped)', async () => {
    const [setup, ...rest] = all
    for (const example of rest.filter(e => e.language === 'sh')) {
      const streaming = example.code.includes('/v1/events')
      const ran = await runExample('bash', ['-e', '-c', setup.code + example.code], streaming)
      if (streaming) expect(ran.stopped, example.code).toBe(true)
      else expect(ran, example.code).toMatchObject({ code: 0, stopped: false })
      expect(ran.stdout, example.code).not.toMatch(/"error"/)
      expect(ran.stderr, example.code).not.toMatch(/curl: \(\d+\)/)
    }
  }, 180_000)

  it('the first examples show the status over the socket and over TCP, and submit without a cwd', async () => {
    const ran = await runExample('bash', ['-e', '-c', all[0].code + all[1].code], false)
    // the answers have no newline at their end
    const [status, submitted, overTcp] = ran.stdout.split(/(?<=\})(?=\{)/).map(answer => JSON.parse(answer))
    expect(status).toMatchObject({ id: expect.any(String), home: join(home.dir, '.meshq') })
    expect(overTcp).toEqual({ ...status, running: overTcp.running })
    expect(submitted.jobs[0]).toMatchObject({ cmd: ['echo', 'hi'], cwd: home.dir })
  })

  it('the log stream example follows the output until the job ends', async () => {
    const example = all.find(e => e.code.includes('follow=1')) as Example
    const ran = await runExample('bash', ['-e', '-c', all[0].code + example.code], false)
    expect(ran.stdout).toBe('one\ntwo\n')
  })

  it('the submit-and-read example prints the output of a job run in the home directory', async () => {
    const example = all.find(e => e.code.includes('until curl')) as Example
    const ran = await runExample('bash', ['-e', '-c', all[0].code + example.code], false)
    expect(ran.stdout).toMatch(new RegExp(`^hello from \\S+ in ${home.dir}\\n$`))
  })

  it('runs the Python example: it submits, waits through the event stream and prints the result', async () => {
    const example = all.find(e => e.language === 'python') as Example
    const ran = await runExample('python3', ['-c', example.code], false)
    expect(ran.stderr).toBe('')
    const [first, output] = ran.stdout.split('\n')
    const [id, state, exitCode] = first.split(' ')
    expect([state, exitCode, output]).toEqual(['failed', '3', 'hello'])
    expect(await json<JobView>(node.home, ['show', id])).toMatchObject({ group: 'py', cwd: home.dir, exitCode: 3 })
  })
})
