/** The one table of job fields, and the record, the requeue lines and the generator derived from it. */
import { describe, expect, it } from 'vitest'
import { runOptionsOf } from '../src/jobs/draft.js'
import { generatorFields, requeueRequest, specView, SUBMIT_FIELDS } from '../src/jobs/fields.js'
import { SUBMIT_OPTIONS } from '../src/jobs/submit-options.js'
import type { JobId, JobSpec, JobView, PeerIdString, SubmitRequest } from '../src/types.js'

const NOW = Date.parse('2026-12-07T10:00:00Z')

const SPEC: JobSpec = {
  id: 'seg-2' as JobId,
  name: 'build',
  cmd: ['make', 'all'],
  cwd: '/src',
  env: { A: '1' },
  group: 'g',
  after: ['seg-1' as JobId],
  afterGroup: [],
  afterAny: ['other-1' as JobId],
  pri: 3,
  retries: 2,
  ttrMs: 60_000,
  timeoutMs: 5000,
  notBefore: NOW + 30_000,
  tags: ['gpu'],
  cores: 2,
  out: 'log.txt',
  key: 'k1',
  allowMissing: true,
  onExit: 'echo bye',
  tmpdir: true,
  memBytes: 1024,
  submitter: '12D3KooWSubmitter' as PeerIdString,
  submittedAt: NOW,
  n: 2,
  seq: 2
}

describe('the submit fields', () => {
  it('are the fields of the submit options (flags and --batch names), with the command and less the CLI\'s export', () => {
    const options = SUBMIT_OPTIONS.map(option => option.field).filter(field => field !== 'export')
    expect(new Set(options)).toEqual(new Set(Object.keys(SUBMIT_FIELDS).filter(field => field !== 'cmd')))
  })
})

describe('the run options of a spec', () => {
  it('are its hooks, private directory and memory limit, and nothing else', () => {
    expect(runOptionsOf(SPEC)).toEqual({ onExit: 'echo bye', tmpdir: true, memBytes: 1024 })
  })
})

describe('the job record of a spec', () => {
  it('shows the spec fields as they are, times as ISO 8601, and nothing internal', () => {
    const view = specView(SPEC)
    expect(view).toMatchObject({ id: 'seg-2', cmd: ['make', 'all'], ttrMs: 60_000, tags: ['gpu'], key: 'k1', onExit: 'echo bye', memBytes: 1024 })
    expect(view.submittedAt).toBe('2026-12-07T10:00:00.000Z')
    expect(view.notBefore).toBe('2026-12-07T10:00:30.000Z')
    for (const internal of ['submitter', 'n', 'seq', 'allowMissing', 'expand']) expect(view).not.toHaveProperty(internal)
  })
})

describe('rm --json: a job record as a request again', () => {
  it('writes back every request field the record holds, with the wait left and the dependencies renamed', () => {
    const job = { ...specView(SPEC), state: 'pending', attempts: [] } as unknown as JobView
    const request = requeueRequest(job, dep => dep === 'seg-1' ? '#1' : dep, NOW + 10_000)
    expect(request).toEqual({
      cmd: ['make', 'all'],
      name: 'build',
      group: 'g',
      after: ['#1'],
      afterAny: ['other-1'],
      pri: 3,
      retries: 2,
      ttr: 60_000,
      timeout: 5000,
      delay: 20_000,
      cwd: '/src',
      env: { A: '1' },
      tag: ['gpu'],
      cores: 2,
      out: 'log.txt',
      onExit: 'echo bye',
      tmpdir: true,
      mem: 1024
    })
  })

  it('leaves out a start time that has passed', () => {
    const job = { ...specView(SPEC), state: 'pending', attempts: [] } as unknown as JobView
    expect(requeueRequest(job, dep => dep, NOW + 60_000)).not.toHaveProperty('delay')
  })
})

describe('an --expand generator', () => {
  it('inherits where and after what the job runs, not what it runs or how', () => {
    const request: Required<SubmitRequest> = {
      cmd: ['x'], name: 'n', group: 'g', after: ['a'], afterGroup: 'ag', afterAny: 'b', afterGroupAny: ['c'], pri: 1, retries: 2,
      ttr: '1m', timeout: '5s', delay: 10, begin: '12:00', cwd: '/w', env: { E: '1' }, tag: 't', cores: 4, out: 'o', onSuccess: 's',
      onFailure: 'f', onExit: 'e', tmpdir: true, keepTmpdir: true, cleanup: false, mem: '1G', id: 'key', allowMissing: true, expand: 'gen', array: '1-3', arrayLimit: 2
    }
    expect(generatorFields(request)).toEqual({
      group: 'g', after: ['a'], afterGroup: 'ag', afterAny: 'b', afterGroupAny: ['c'], pri: 1, retries: 2, ttr: '1m', delay: 10,
      begin: '12:00', cwd: '/w', env: { E: '1' }, tag: 't', allowMissing: true
    })
  })
})
