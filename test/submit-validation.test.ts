/**
 * Validation of the run options (hooks, private directory, memory limit): on the node (`draftJob`)
 * and in the CLI (flags and `--batch` fields).
 */
import { describe, expect, it } from 'vitest'
import { parseArgs } from '../src/cli/args.js'
import { sub } from '../src/cli/commands/sub.js'
import { submitOptionsFromArgs } from '../src/cli/submit-options.js'
import { parseBatch } from '../src/jobs/batch.js'
import { buildRequest } from '../src/jobs/submit-options.js'
import { draftJob } from '../src/jobs/draft.js'
import { parseMemory } from '../src/size.js'
import type { SubmitRequest } from '../src/types.js'

const client = { cwd: '/work', env: {}, now: 0 }
const draft = (fields: Partial<SubmitRequest>): ReturnType<typeof draftJob> => draftJob({ cmd: ['true'], cwd: '/work', ...fields }, 0)
const invalid = (fields: Record<string, unknown>): unknown => (() => draft(fields as Partial<SubmitRequest>))

describe('parseMemory', () => {
  it('reads binary units, with or without B or iB, and plain bytes', () => {
    expect(parseMemory('512M')).toBe(512 * 2 ** 20)
    expect(parseMemory('2G')).toBe(2 * 2 ** 30)
    expect(parseMemory('1.5g')).toBe(1.5 * 2 ** 30)
    expect(parseMemory('300MiB')).toBe(300 * 2 ** 20)
    expect(parseMemory('1024 KB')).toBe(2 ** 20)
    expect(parseMemory(2 ** 20)).toBe(2 ** 20)
  })

  it('refuses what is not a size, and sizes under 1M', () => {
    for (const bad of ['', 'lots', '10X', '-5M', 'M', '1e9']) {
      expect(() => parseMemory(bad, '--mem')).toThrow(expect.objectContaining({ name: 'UsageError', message: expect.stringMatching(/^bad --mem: .* \(expected a size such as 512M or 2G\)$/) }))
    }
    expect(() => parseMemory('512K')).toThrow(/is less than 1M/)
    expect(() => parseMemory(1000)).toThrow(/is less than 1M/)
  })
})

describe('draftJob: run options', () => {
  it('keeps hooks, directory flags and the memory limit in bytes', () => {
    expect(draft({ onSuccess: 'a', onFailure: 'b', onExit: 'c', tmpdir: true, cleanup: true, mem: '100M' })).toMatchObject({
      onSuccess: 'a', onFailure: 'b', onExit: 'c', tmpdir: true, cleanup: true, memBytes: 100 * 2 ** 20
    })
    expect(draft({ tmpdir: true, keepTmpdir: true })).toMatchObject({ tmpdir: true, keepTmpdir: true })
  })

  it('leaves them out when not given or false', () => {
    const job = draft({ tmpdir: false })
    for (const field of ['onSuccess', 'onFailure', 'onExit', 'tmpdir', 'keepTmpdir', 'cleanup', 'memBytes']) {
      expect(job).not.toHaveProperty(field, expect.anything())
    }
  })

  it('refuses wrong types with the field name', () => {
    expect(invalid({ onExit: '' })).toThrow(expect.objectContaining({ name: 'InvalidJobError', message: 'onExit must be a non-empty string' }))
    expect(invalid({ onFailure: ['mail'] })).toThrow('onFailure must be a non-empty string')
    expect(invalid({ tmpdir: 'yes' })).toThrow('tmpdir must be true or false, got "yes"')
    expect(invalid({ mem: 'lots' })).toThrow(expect.objectContaining({ name: 'InvalidJobError', message: expect.stringMatching(/^bad mem: "lots"/) }))
    expect(invalid({ mem: 1.5 })).toThrow(/bad mem/)
  })

  it('refuses keepTmpdir or cleanup without tmpdir, and both together', () => {
    expect(invalid({ keepTmpdir: true })).toThrow("keepTmpdir needs tmpdir: it is about the job's private directory")
    expect(invalid({ cleanup: true, tmpdir: false })).toThrow('cleanup needs tmpdir')
    expect(invalid({ tmpdir: true, keepTmpdir: true, cleanup: true })).toThrow('cleanup and keepTmpdir contradict each other')
  })
})

describe('draftJob: NUL bytes', () => {
  // before the check, such a job was accepted, and every node that claimed it failed to spawn it
  // and released it at once: a hot loop of claims until it was killed
  it('refuses one in any cmd element, in env names and values and in cwd, naming the field', () => {
    const nul = (message: RegExp): unknown => expect.objectContaining({ name: 'InvalidJobError', message: expect.stringMatching(message) })
    expect(invalid({ cmd: ['echo', 'a\u0000b'] })).toThrow(nul(/^cmd\[1\] contains a NUL byte/))
    expect(invalid({ cmd: ['ec\u0000ho'] })).toThrow(nul(/^cmd\[0\] contains a NUL byte/))
    expect(invalid({ cwd: '/work\u0000' })).toThrow(nul(/^cwd contains a NUL byte/))
    expect(invalid({ env: { A: 'x\u0000' } })).toThrow(nul(/^env A contains a NUL byte/))
    expect(invalid({ env: { 'A\u0000B': 'x' } })).toThrow(nul(/^the name of env "A\\u0000B" contains a NUL byte/))
  })
})

describe('sub: run option flags and --batch fields', () => {
  const parse = (argv: string[]): SubmitRequest => {
    const args = parseArgs('sub', argv, sub.flags, { restAfterFirstPositional: true })
    return buildRequest(args.positionals, submitOptionsFromArgs(args, client), client)
  }

  it('turns the flags into request fields, the size into bytes', () => {
    expect(parse(['--on-success', 'echo ok', '--on-failure', 'mail x', '--on-exit', 'true', '--tmpdir', '--keep-tmpdir', '--mem', '2G', '--', 'job'])).toEqual({
      cmd: ['job'], cwd: '/work', onSuccess: 'echo ok', onFailure: 'mail x', onExit: 'true', tmpdir: true, keepTmpdir: true, mem: 2 * 2 ** 30
    })
  })

  it('refuses a bad --mem as a usage error', () => {
    expect(() => parse(['--mem', '12 parsecs', 'job'])).toThrow(expect.objectContaining({ name: 'UsageError', message: expect.stringMatching(/^bad --mem: /) }))
  })

  it('accepts the camelCase and the flag spellings in --batch, and checks their types', () => {
    const [camel, flags] = parseBatch([
      '{"cmd": ["a"], "onFailure": "mail", "tmpdir": true, "cleanup": true, "mem": "1G"}',
      '{"cmd": ["b"], "on-exit": "true", "keep-tmpdir": true, "tmpdir": true, "mem": 1048576}'
    ].join('\n'), {}, client)
    expect(camel).toMatchObject({ onFailure: 'mail', tmpdir: true, cleanup: true, mem: 2 ** 30 })
    expect(flags).toMatchObject({ onExit: 'true', keepTmpdir: true, tmpdir: true, mem: 2 ** 20 })
    expect(() => parseBatch('{"cmd": ["a"], "tmpdir": "yes"}', {}, client)).toThrow('line 1: bad tmpdir: "yes" (expected true or false)')
    expect(() => parseBatch('{"cmd": ["a"], "onExit": 3}', {}, client)).toThrow('line 1: bad onExit: 3 (expected a non-empty string)')
    expect(() => parseBatch('{"cmd": ["a"], "mem": "big"}', {}, client)).toThrow(/^line 1: bad mem: "big"/)
  })
})
