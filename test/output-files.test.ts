import { appendFile, mkdir, readdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { OutputFiles } from '../src/exec/output-files.js'
import { InvalidJobError } from '../src/errors.js'
import { tempDir } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { await Promise.all(cleanups.splice(0).map(async c => { await c() })) })

async function home (): Promise<string> {
  const { dir, cleanup } = await tempDir('meshq-output-')
  cleanups.push(cleanup)
  return dir
}

async function collect (chunks: AsyncIterable<Uint8Array>): Promise<string> {
  let text = ''
  for await (const chunk of chunks) text += Buffer.from(chunk).toString()
  return text
}

const notFollowing = { follow: false, ended: async () => true, signal: new AbortController().signal }

describe('OutputFiles', () => {
  it('lays out an attempt as output/<job>/<epoch>.<stream> and .hooks', async () => {
    const dir = await home()
    const files = new OutputFiles(dir)
    expect(files.paths('abcdef-7', 2)).toEqual({ stdout: join(dir, 'output', 'abcdef-7', '2.stdout'), stderr: join(dir, 'output', 'abcdef-7', '2.stderr') })
    expect(files.hookLog('abcdef-7', 2)).toBe(join(dir, 'output', 'abcdef-7', '2.hooks'))
  })

  it('refuses a job id that would lead out of the output directory', async () => {
    const files = new OutputFiles(await home())
    for (const job of ['..', '.', '', 'a/b', '../x']) expect(() => files.paths(job, 1)).toThrow(InvalidJobError)
  })

  it('reads what is there, and nothing for an attempt without output', async () => {
    const files = new OutputFiles(await home())
    const { stderr } = files.paths('abcdef-1', 1)
    await mkdir(dirname(stderr), { recursive: true })
    await writeFile(stderr, 'oops\n')
    expect(await collect(files.read('abcdef-1', 1, 'stderr', notFollowing))).toBe('oops\n')
    expect(await collect(files.read('abcdef-1', 1, 'stdout', notFollowing))).toBe('')
    expect(await collect(files.read('abcdef-9', 3, 'stdout', notFollowing))).toBe('')
  })

  it('follows a growing file until the attempt has ended, and misses nothing written before the end', async () => {
    const files = new OutputFiles(await home())
    const { stdout } = files.paths('abcdef-2', 1)
    await mkdir(dirname(stdout), { recursive: true })
    await writeFile(stdout, 'one\n')
    let ended = false
    const reading = collect(files.read('abcdef-2', 1, 'stdout', { follow: true, ended: async () => ended, signal: new AbortController().signal }))
    await appendFile(stdout, 'two\n')
    await appendFile(stdout, 'three\n')
    ended = true
    expect(await reading).toBe('one\ntwo\nthree\n')
  })

  it('removes the output of the jobs picked, and only those', async () => {
    const dir = await home()
    const files = new OutputFiles(dir)
    for (const job of ['aaaaaa-1', 'aaaaaa-2', 'bbbbbb-1']) {
      await mkdir(dirname(files.paths(job, 1).stdout), { recursive: true })
      await writeFile(files.paths(job, 1).stdout, job)
    }
    await files.remove(job => job.startsWith('aaaaaa-'))
    expect(await readdir(join(dir, 'output'))).toEqual(['bbbbbb-1'])
    await new OutputFiles(await home()).remove(() => true) // no output directory yet: nothing to do
  })
})
