/**
 * Property-based fuzzing of every decoder a node runs on a peer's bytes, in process: claim batches
 * (and the claims state machine they feed), status messages, sync frames, logs requests, heads
 * answers, and facts arriving by sync (validation, then the job table and the membership that
 * take them in, and the views rendered from them). Join requests, and all of these over real
 * streams, are thrown at a real node in fuzz-e2e.test.ts. Cases that once found a bug are replayed
 * from test/fuzz-corpus/decoders.json.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FakeClock } from '../src/clock.js'
import { META_DOC, MetaMap, SegmentMap, isJobId, validFact } from '../src/crdt/facts.js'
import type { FactChange } from '../src/crdt/facts.js'
import type { Ledger } from '../src/crdt/ledger.js'
import { parseFrontier } from '../src/net/heads.js'
import { Membership } from '../src/net/membership.js'
import { parseLogRequest } from '../src/net/logs.js'
import { parseStatus } from '../src/net/status-gossip.js'
import { ProtocolError, decodeFrame } from '../src/net/sync.js'
import { decodeBatch, validBatch } from '../src/sched/claim-batch.js'
import type { ClaimBatch } from '../src/sched/claim-batch.js'
import { Claims } from '../src/sched/claims.js'
import { JobTable } from '../src/sched/table.js'
import { toJobView } from '../src/jobs/view.js'

const RUNS = 2000
const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))

/** Mostly a value of the right shape, sometimes anything at all: gets past the first check often enough to reach the next. */
const mostly = <T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: fc.anything() })
const jobId = fc.oneof(fc.constantFrom('aaaaaa-1', 'aaaaaa-2', 'bbbbbb-7'), fc.string())
const peer = fc.constantFrom('peerA', 'peerB', 'peerC')
const count = fc.oneof(fc.nat({ max: 100 }), fc.integer(), fc.constantFrom(0, Number.MAX_SAFE_INTEGER, -1, 1e300, NaN))

/** Bytes a peer could send: random, JSON of anything, or JSON of nearly the expected shape. */
const bytesAround = (shaped: fc.Arbitrary<unknown>): fc.Arbitrary<Uint8Array> => fc.oneof(
  fc.uint8Array({ maxLength: 512 }),
  fc.anything().map(encode),
  shaped.map(encode)
)

const batchShape = fc.record({
  v: mostly(fc.constant(2)),
  peer: mostly(peer),
  boot: mostly(fc.constantFrom('boot1', 'boot2')),
  seq: mostly(count),
  claims: mostly(fc.array(fc.tuple(jobId, count, count), { maxLength: 5 })),
  renews: mostly(fc.array(fc.tuple(jobId, count, count), { maxLength: 5 })),
  releases: mostly(fc.array(fc.tuple(jobId, count), { maxLength: 5 })),
  withdraws: mostly(fc.array(fc.tuple(jobId, count), { maxLength: 5 })),
  refusals: mostly(fc.array(fc.tuple(jobId, count, peer), { maxLength: 5 })),
  votes: mostly(fc.array(fc.tuple(jobId, count, peer), { maxLength: 5 })),
  acks: mostly(fc.array(fc.tuple(peer, fc.string(), count), { maxLength: 5 }))
})

describe('fuzzing what peers send', () => {
  it('claim batches: the decoder returns a valid batch or nothing, and the claims machine takes every valid one', () => {
    const clock = new FakeClock()
    let deliver: (batch: ClaimBatch) => void = () => {}
    const claims = new Claims({
      self: 'peerA',
      clock,
      transport: { publish: () => {}, subscribe: handler => { deliver = handler } },
      peers: () => ['peerB', 'peerC'].map(p => ({ peer: p, slots: 2, running: 0, draining: false, tags: [] })),
      members: () => 3,
      othersSilentFor: () => false,
      onExpired: () => {},
      onPreempted: () => {},
      quietMs: 0
    })
    fc.assert(fc.property(bytesAround(batchShape), fc.nat({ max: 60_000 }), (bytes, elapse) => {
      const batch = decodeBatch(bytes)
      if (batch === undefined) return
      expect(validBatch(batch)).toBe(true)
      deliver(batch)
      clock.advance(elapse)
    }), { numRuns: RUNS })
    expect(claims.stats().batches).toBeGreaterThanOrEqual(0) // still answers
    claims.stop()
  })

  it('status messages: the decoder returns a status of the right types or nothing', () => {
    const shape = fc.record({
      peer: mostly(peer), slots: mostly(count), running: mostly(count), draining: mostly(fc.boolean()), tags: mostly(fc.array(fc.string())),
      memFree: mostly(count), boot: mostly(fc.string({ maxLength: 70 })), seq: mostly(count), at: mostly(count)
    }, { requiredKeys: ['peer', 'slots', 'running', 'draining', 'tags'] })
    fc.assert(fc.property(bytesAround(shape), bytes => {
      const status = parseStatus(bytes)
      if (status === undefined) return
      expect(typeof status.peer).toBe('string')
      expect(Number.isInteger(status.slots) && Number.isInteger(status.running)).toBe(true)
      expect(status.tags.every(t => typeof t === 'string')).toBe(true)
      // a stamp is whole or absent: replay checks never see half of one
      if (status.boot !== undefined) expect(Number.isSafeInteger(status.seq) && Number.isSafeInteger(status.at)).toBe(true)
      else expect([status.seq, status.at]).toEqual([undefined, undefined])
    }), { numRuns: RUNS })
  })

  it('sync frames: the decoder returns a frame with a safe document id, or throws ProtocolError only', () => {
    const framed = fc.tuple(fc.constantFrom(1, 2, 3, 0, 99), fc.oneof(fc.constantFrom('meta', 'aaaaaa', '../../x', ''), fc.string()), fc.uint8Array({ maxLength: 64 }))
      .map(([type, doc, payload]) => { const id = Buffer.from(doc).subarray(0, 255); return Uint8Array.from([type, id.length, ...id, ...payload]) })
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), framed), bytes => {
      try {
        const frame = decodeFrame(bytes)
        expect(frame.type === 1 || /^(meta|[a-z2-7]{6})$/.test(frame.doc)).toBe(true)
      } catch (err) {
        expect(err).toBeInstanceOf(ProtocolError)
      }
    }), { numRuns: RUNS })
  })

  it('logs requests: the decoder returns a request for a job id (never a path) or nothing', () => {
    const shape = fc.record({ job: mostly(fc.oneof(jobId, fc.constantFrom('../stolen', 'a/b-1', '..'))), epoch: mostly(count), stream: mostly(fc.constantFrom('stdout', 'stderr', '../x')), follow: mostly(fc.boolean()) })
    fc.assert(fc.property(bytesAround(shape), bytes => {
      const request = parseLogRequest(bytes)
      if (request === undefined) return
      expect(isJobId(request.job) && !request.job.includes('/') && !request.job.includes('..')).toBe(true)
      expect(['stdout', 'stderr']).toContain(request.stream)
    }), { numRuns: RUNS })
  })

  it('heads answers: the decoder returns a frontier of safe document ids and heads, or nothing', () => {
    const head = fc.oneof(fc.constant('a'.repeat(64)), fc.string())
    const shape = fc.record({ open: mostly(fc.dictionary(fc.oneof(fc.constantFrom('meta', 'aaaaaa'), fc.string()), mostly(fc.array(head, { maxLength: 3 })))), sealed: mostly(fc.array(fc.oneof(fc.constant('bbbbbb'), fc.string()), { maxLength: 3 })) })
    fc.assert(fc.property(bytesAround(shape), bytes => {
      const frontier = parseFrontier(bytes)
      if (frontier === undefined) return
      for (const doc of [...Object.keys(frontier.open), ...frontier.sealed]) expect(doc).toMatch(/^(meta|[a-z2-7]{6})$/)
    }), { numRuns: RUNS })
  })

  it('facts arriving by sync: whatever a peer writes, the job table and the membership take it in and still render every view', () => {
    fc.assert(fc.property(fc.array(factArbitrary, { minLength: 1, maxLength: 12 }), changes => {
      const { table, membership } = replica()
      table.ingest(changes)
      membership.ingest(changes)
      renderAll(table, membership, changes)
    }), { numRuns: RUNS })
  })

  it('replays the corpus of cases that found bugs', () => {
    const corpus = JSON.parse(readFileSync(join(fileURLToPath(new URL('.', import.meta.url)), 'fuzz-corpus', 'decoders.json'), 'utf8')) as Array<{ finding: string, decoder: string, input: unknown }>
    expect(corpus.length).toBeGreaterThan(0)
    for (const { decoder, input } of corpus) {
      if (decoder === 'logs') expect(parseLogRequest(encode(input))).toBeUndefined()
      else if (decoder === 'facts') {
        const { table, membership } = replica()
        const changes = input as FactChange[]
        table.ingest(changes)
        membership.ingest(changes)
        renderAll(table, membership, changes)
      } else throw new Error(`unknown decoder in the corpus: ${decoder}`)
    }
  })
})

/** A spec that passes validation, with each field sometimes replaced by anything. */
const specValue = fc.record({
  id: mostly(fc.constantFrom('aaaaaa-1', 'aaaaaa-2')),
  cmd: mostly(fc.array(fc.string(), { minLength: 1, maxLength: 3 })),
  cwd: mostly(fc.constantFrom('/', '/tmp')),
  env: mostly(fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 })),
  after: mostly(fc.array(jobId, { maxLength: 2 })),
  afterGroup: mostly(fc.array(fc.string(), { maxLength: 2 })),
  tags: mostly(fc.array(fc.string(), { maxLength: 2 })),
  group: mostly(fc.option(fc.constantFrom('g1', 'g2'))),
  pri: mostly(count),
  retries: mostly(count),
  cores: mostly(count),
  ttrMs: mostly(count),
  timeoutMs: mostly(count),
  notBefore: mostly(count),
  submittedAt: mostly(count),
  seq: mostly(count)
}, { requiredKeys: ['id', 'cmd', 'cwd', 'env', 'after', 'afterGroup', 'tags', 'pri', 'retries', 'cores', 'ttrMs', 'submittedAt', 'seq'] })

const attemptValue = fc.record({
  job: mostly(fc.constantFrom('aaaaaa-1', 'aaaaaa-2')),
  epoch: mostly(count),
  node: mostly(peer),
  basis: mostly(count),
  claimedAt: mostly(count),
  startedAt: mostly(count),
  endedAt: mostly(count),
  exitCode: mostly(count),
  failReason: mostly(fc.constantFrom('lost', 'non-zero-exit', 'spawn-error', 'nonsense')),
  withdrawn: mostly(fc.boolean()),
  tail: mostly(fc.string())
}, { requiredKeys: ['job', 'epoch', 'node', 'basis', 'claimedAt'] })

const controlValue = fc.record({
  kind: mostly(fc.constantFrom('kill', 'retry', 'rm', 'mod', 'other')),
  lamport: mostly(count),
  by: mostly(peer),
  patch: mostly(fc.record({ pri: mostly(count), name: mostly(fc.string()), tags: mostly(fc.array(fc.string())), notBefore: mostly(count) }, { requiredKeys: [] }))
}, { requiredKeys: ['kind', 'lamport', 'by'] })

const metaValue = fc.record({
  peer: mostly(peer),
  addrs: mostly(fc.array(fc.oneof(fc.constant('/ip4/127.0.0.1/tcp/1'), fc.constant('/ip4/127.0.0.1/tcp/1/bogus'), fc.string()), { maxLength: 3 })),
  id: mostly(fc.constantFrom('inv1', 'inv2')),
  hash: mostly(fc.constant('0'.repeat(64))),
  expiresAt: mostly(count),
  createdAt: mostly(count),
  uses: mostly(count),
  by: mostly(peer),
  at: mostly(count),
  slots: mostly(count),
  tags: mostly(fc.array(fc.string())),
  paused: mostly(fc.boolean()),
  until: mostly(count),
  lamport: mostly(count),
  limit: mostly(fc.option(count))
}, { requiredKeys: [] })

const factArbitrary: fc.Arbitrary<FactChange> = fc.oneof(
  fc.record({ doc: fc.constant('aaaaaa'), map: fc.constant(SegmentMap.jobs), key: fc.constantFrom('aaaaaa-1', 'aaaaaa-2', '../x'), value: specValue }),
  fc.record({ doc: fc.constant('aaaaaa'), map: fc.constant(SegmentMap.attempts), key: fc.constantFrom('aaaaaa-1|1:peerB', 'aaaaaa-2|2:peerC', 'x'), value: attemptValue }),
  fc.record({ doc: fc.constant('aaaaaa'), map: fc.constant(SegmentMap.controls), key: fc.constantFrom('aaaaaa-1|3:peerB', 'aaaaaa-2|1:peerA', '|'), value: controlValue }),
  fc.record({
    doc: fc.constant(META_DOC),
    map: fc.constantFrom(...Object.values(MetaMap)),
    key: fc.oneof(peer, fc.constantFrom('inv1', 'revoke|inv1|peerA', 'use|inv1|peerC', 'peerB|peerA', 'g1|1:peerA', 'g2', '|', ''), fc.string()),
    value: metaValue
  }),
  fc.record({ doc: fc.string(), map: fc.string(), key: fc.string(), value: fc.anything() })
) as fc.Arbitrary<FactChange>

function replica (): { table: JobTable, membership: Membership } {
  const clock = new FakeClock()
  const ledger = { put: async () => {} } as unknown as Ledger
  return { table: new JobTable({ clock, leaseAlive: () => true }), membership: new Membership({ self: 'peerA', ledger, clock }) }
}

/** Everything a node renders from its facts for the API: job views, invites (as dates), members and their addresses. */
function renderAll (table: JobTable, membership: Membership, changes: FactChange[]): void {
  for (const change of changes) {
    if (change.map === SegmentMap.jobs && validFact(change)) {
      const entry = table.get(change.key)
      if (entry != null) JSON.stringify(toJobView(entry, () => 'ready'))
    }
  }
  for (const invite of membership.listInvites()) {
    JSON.stringify({ ...invite, createdAt: new Date(invite.createdAt).toISOString(), expiresAt: new Date(invite.expiresAt).toISOString() })
  }
  for (const member of membership.memberIds()) membership.addresses(member)
}
