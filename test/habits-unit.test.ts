/**
 * Unit tests of the parts behind Slurm-style habits: `--begin`, `#MESHQ` lines, `--export`, and
 * the node's checks of `cwd`, `env`, `begin` and `afterAny`.
 */
import { describe, expect, it } from 'vitest'
import { parseBegin } from '../src/jobs/begin.js'
import { jobEnvironment, parseExport } from '../src/jobs/environment.js'
import { execFileSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { directives, MAX_SCRIPT_BYTES, readScriptFile, scriptFromInput, splitWords, withScriptOptions } from '../src/cli/script.js'
import { tempDir } from './helpers.js'
import { MAX_ENV_BYTES } from '../src/env-size.js'
import { draftJob } from '../src/jobs/draft.js'

const usage = (message: RegExp): unknown => expect.objectContaining({ name: 'UsageError', message: expect.stringMatching(message) })

describe('--begin', () => {
  // a local time, so that HH:MM means the same whatever the machine's zone
  const now = new Date(2026, 11, 7, 10, 30, 0).getTime()

  it('takes now, now+DUR, HH:MM[:SS] (today if still ahead, else tomorrow) and ISO 8601', () => {
    expect(parseBegin('now', now)).toBe(now)
    expect(parseBegin('now+1h', now)).toBe(now + 3_600_000)
    expect(parseBegin('NOW + 90s', now)).toBe(now + 90_000)
    expect(parseBegin('18:00', now)).toBe(new Date(2026, 11, 7, 18, 0, 0).getTime())
    expect(parseBegin('09:15:30', now)).toBe(new Date(2026, 11, 8, 9, 15, 30).getTime())
    expect(parseBegin('10:30', now)).toBe(new Date(2026, 11, 8, 10, 30, 0).getTime())
    expect(parseBegin('2026-12-24T18:00:00Z', now)).toBe(Date.UTC(2026, 11, 24, 18))
    expect(parseBegin('2026-12-24T18:00+01:00', now)).toBe(Date.UTC(2026, 11, 24, 17))
    expect(parseBegin('2026-12-24T18:00', now)).toBe(new Date(2026, 11, 24, 18, 0).getTime())
  })

  it('refuses anything else as a usage error', () => {
    for (const bad of ['', 'tomorrow', '24:00', '7:60', 'now-1h', 'now+x', '2026-02-30T25:00', 'Dec 24 2026', '1700000000']) {
      expect(() => parseBegin(bad, now), bad).toThrow(usage(/^bad --begin: /))
    }
  })
})

describe('#MESHQ lines', () => {
  it('are read from the comment block at the top only', () => {
    const text = '#!/bin/bash\n\n# about\n#MESHQ --cores 4\n#MESHQ\t--group "my group" # why\n#MESHQX --no\necho hi\n#MESHQ --pri 9\n'
    expect(directives(text)).toEqual([{ line: 4, words: ['--cores', '4'] }, { line: 5, words: ['--group', 'my group'] }])
  })

  it('split into words as sh would', () => {
    expect(splitWords(`--env 'A=x y' --name a\\ b --env B="q'r" #c`)).toEqual(['--env', 'A=x y', '--name', 'a b', '--env', "B=q'r"])
    expect(() => splitWords('--name "open')).toThrow(usage(/unterminated " quote/))
  })

  it('give options under the command line\'s, merging --env; errors name the line', () => {
    const client = { cwd: '/w', env: {}, now: 0 }
    const script = { name: 'job.sh', text: '#MESHQ --group g --pri 1 --env A=1 --env B=1\n#MESHQ --after x1\ntrue\n' }
    expect(withScriptOptions(script, { pri: 5, env: { B: '2' } }, client)).toEqual({ name: 'job.sh', group: 'g', pri: 5, after: ['x1'], env: { A: '1', B: '2' } })
    expect(() => withScriptOptions({ name: 's', text: '#MESHQ --pri 1\n#MESHQ --wait\n' }, {}, client)).toThrow(usage(/^s line 2: unknown flag --wait/))
    expect(() => withScriptOptions({ name: 's', text: '#MESHQ --ttr soon\n' }, {}, client)).toThrow(usage(/^s line 1: bad --ttr/))
    expect(() => withScriptOptions({ name: 's', text: '#MESHQ echo\n' }, {}, client)).toThrow(usage(/^s line 1: unexpected 'echo'/))
  })

  it('a script file is a readable regular text file; anything else runs as a command', async () => {
    const dir = await tempDir()
    try {
      await writeFile(join(dir.dir, 'job.sh'), '#!/bin/sh\necho hi\n')
      await writeFile(join(dir.dir, 'prog'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2]))
      await writeFile(join(dir.dir, 'huge.sh'), 'x'.repeat(MAX_SCRIPT_BYTES + 1))
      await mkdir(join(dir.dir, 'adir'))
      execFileSync('mkfifo', [join(dir.dir, 'fifo')])
      expect(await readScriptFile('job.sh', dir.dir)).toEqual({ name: 'job.sh', text: '#!/bin/sh\necho hi\n' })
      for (const other of ['prog', 'adir', 'fifo', 'missing', 'hostname']) expect(await readScriptFile(other, dir.dir), other).toBeUndefined()
      await expect(readScriptFile('huge.sh', dir.dir)).rejects.toEqual(usage(/^huge\.sh is over 100 KiB/))
    } finally {
      await dir.cleanup()
    }
  })

  it('stdin: empty is no script, a NUL byte is refused', () => {
    expect(scriptFromInput(Buffer.alloc(0))).toBeUndefined()
    expect(() => scriptFromInput(Buffer.from('a\0b'))).toThrow(usage(/NUL byte/))
    expect(scriptFromInput(Buffer.from('echo hi\n'))).toEqual({ name: 'stdin', text: 'echo hi\n' })
  })
})

describe('--export', () => {
  const submitter = { PATH: '/bin', FOO: 'f', PWD: '/here', MESHQ_HOME: '/h', MESHQ_JOIN_TOKEN: 'mq1.x', SSH_AUTH_SOCK: '/s' }

  it('copies all but session and MESHQ_ variables by default; NONE nothing; names exactly those; --env on top', () => {
    expect(jobEnvironment(submitter, undefined, undefined)).toEqual({ PATH: '/bin', FOO: 'f' })
    expect(jobEnvironment(submitter, ['NONE'], { K: 'v' })).toEqual({ K: 'v' })
    expect(jobEnvironment(submitter, ['FOO', 'MESHQ_HOME', 'UNSET'], { FOO: 'mine' })).toEqual({ FOO: 'mine', MESHQ_HOME: '/h' })
  })

  it('refuses mixing ALL or NONE with names, K=V and nothing', () => {
    expect(parseExport(['all'], '--export')).toEqual(['ALL'])
    expect(() => parseExport(['NONE', 'FOO'], '--export')).toThrow(usage(/NONE cannot be combined/))
    expect(() => parseExport(['FOO=1'], '--export')).toThrow(usage(/set values with --env/))
    expect(() => parseExport([], '--export')).toThrow(usage(/expected ALL, NONE or K1,K2/))
  })

  it('caps the environment with an error that says how to narrow it', () => {
    const big = { BIG: 'x'.repeat(MAX_ENV_BYTES) }
    expect(() => jobEnvironment(big, undefined, undefined)).toThrow(usage(/over the 64 KiB a job may carry: narrow it with --export NONE/))
  })
})

describe("the node's checks", () => {
  const now = 1_000_000

  it('runs a job without cwd in the home directory, and refuses a relative one', () => {
    expect(draftJob({ cmd: ['true'] }, now, '/home/me').cwd).toBe('/home/me')
    expect(() => draftJob({ cmd: ['true'], cwd: 'rel' }, now)).toThrow(expect.objectContaining({ name: 'InvalidJobError', message: expect.stringMatching(/cwd must be an absolute path/) }))
  })

  it('refuses an environment over the cap', () => {
    expect(() => draftJob({ cmd: ['true'], cwd: '/', env: { BIG: 'x'.repeat(MAX_ENV_BYTES) } }, now)).toThrow(/env is 65 KiB: at most 64 KiB/)
  })

  it('starts at the later of delay and begin; a past begin means now', () => {
    const at = (fields: object): number | undefined => draftJob({ cmd: ['true'], cwd: '/', ...fields }, now).notBefore
    expect(at({ begin: new Date(now + 5000).toISOString() })).toBe(now + 5000)
    expect(at({ begin: now + 5000, delay: '10s' })).toBe(now + 10_000)
    expect(at({ begin: now - 5000 })).toBeUndefined()
    expect(() => at({ begin: 'soon' })).toThrow(/begin must be an ISO 8601 date-time/)
  })

  it('keeps afterAny and afterGroupAny only when given', () => {
    expect(draftJob({ cmd: ['true'], cwd: '/', afterAny: 'a-1,b-2', afterGroupAny: ['g'] }, now)).toMatchObject({ afterAny: ['a-1', 'b-2'], afterGroupAny: ['g'] })
    const plain = draftJob({ cmd: ['true'], cwd: '/' }, now)
    expect([plain.afterAny, plain.afterGroupAny]).toEqual([undefined, undefined])
  })
})
