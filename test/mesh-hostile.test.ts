import { execFile } from 'node:child_process'
import { lstat, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import { CLI, json, meshq, ok, startCluster, startNode } from './cluster.js'
import type { TestNode } from './cluster.js'
import { tempDir, waitFor } from './helpers.js'
import type { MeshqLibp2p } from '../src/net/p2p.js'
import { decodeToken } from '../src/net/membership.js'
import type { JoinToken } from '../src/net/membership.js'
import { LOGS_PROTOCOL } from '../src/net/logs.js'
import { createIntruder, joinWith, tokenOf, tryJoin } from './intruder.js'
import { FrameType, SYNC_PROTOCOL, encodeFrame } from '../src/net/sync.js'
import type { JobView, PeerView } from '../src/types.js'

let nodes: TestNode[] = []
const hosts: MeshqLibp2p[] = []
/** Nodes of clusters of their own, started by single tests. */
const others: TestNode[] = []
beforeAll(async () => { nodes = await startCluster(2, ['--slots', '2']) })
afterAll(async () => {
  for (const h of hosts) await h.stop()
  for (const n of [...nodes, ...others]) await n.cleanup()
})

/** An intruder host, stopped after the suite; `allowPeer` picks whom it talks to. */
async function intruder (token: JoinToken, allowPeer?: (peer: string) => boolean): Promise<MeshqLibp2p> {
  const host = await createIntruder(token, allowPeer)
  hosts.push(host)
  return host
}

/** A job submitted on one node runs and is seen done on the other: the cluster still works. */
async function clusterWorks (): Promise<void> {
  const id = (await ok(nodes[0].home, ['sub', '--', 'true'])).trim()
  await waitFor(async () => (await json<JobView>(nodes[1].home, ['show', id])).state === 'done', { what: 'a job to run after the attack' })
}

/** Evicts an intruder that joined, so that the quorum is again the two real nodes. */
async function evict (host: MeshqLibp2p): Promise<void> {
  const id = host.peerId.toString()
  await waitFor(async () => (await json<PeerView[]>(nodes[0].home, ['peers'])).some(p => p.id === id), { what: 'the member to be known' })
  await ok(nodes[0].home, ['evict', id])
  await waitFor(async () => !(await json<PeerView[]>(nodes[1].home, ['peers'])).some(p => p.id === id), { what: 'the eviction to reach every node' })
}

describe('a peer with the cluster key', () => {
  it('that is not a member gets no ledger and is disconnected', async () => {
    const token = await tokenOf(nodes[0])
    const host = await intruder(token)
    const target = multiaddr(token.addrs[0])
    await host.dial(target)
    const stream = await host.dialProtocol(target, SYNC_PROTOCOL).catch(() => undefined)
    if (stream != null) {
      const received = await lpStream(stream).read({ signal: AbortSignal.timeout(5000) }).then(() => true, () => false)
      expect(received).toBe(false)
    }
    await waitFor(() => host.getPeers().length === 0, { what: 'the non-member to be disconnected', timeout: 15_000 })
    await clusterWorks()
  })

  it('that is a member but sends malformed, oversized and replayed messages does not crash or stall the others', async () => {
    const token = await tokenOf(nodes[0])
    const host = await intruder(token)
    const target = multiaddr(token.addrs[0])
    await joinWith(host, token) // for real, then misbehave

    const frames = [
      new Uint8Array([99, 1, 2, 3]), // unknown frame type
      encodeFrame(FrameType.sync, '../../etc', new Uint8Array([1, 2])), // bad document id
      encodeFrame(FrameType.sync, 'meta', new Uint8Array(512).fill(0x42)), // garbage sync message
      encodeFrame(FrameType.blob, 'abcdef', new Uint8Array(2048).fill(7)), // garbage blob
      encodeFrame(FrameType.manifest, '', new TextEncoder().encode('{not json'))
    ]
    for (const frame of frames) {
      const sync = lpStream(await host.dialProtocol(target, SYNC_PROTOCOL))
      await sync.write(frame).catch(() => {})
    }
    // a length prefix announcing far more than any frame may hold
    const raw = await host.dialProtocol(target, SYNC_PROTOCOL)
    raw.send(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]))

    const { pubsub } = host.services
    const claims = `meshq/${token.cluster}/claims/2`
    pubsub.subscribe(claims)
    await waitFor(() => pubsub.getSubscribers(claims).length > 0, { what: 'gossip mesh with the intruder' })
    const replayed = new TextEncoder().encode(JSON.stringify({ v: 2, peer: host.peerId.toString(), boot: 'x', seq: 1, claims: [['zzzzzz-1', 1, 3000]], renews: [], releases: [], withdraws: [], votes: [], acks: [] }))
    for (const data of [new TextEncoder().encode('garbage'), new Uint8Array(300 * 1024), replayed, replayed]) {
      await pubsub.publish(claims, data).catch(() => {})
    }

    await clusterWorks()
    for (const node of nodes) expect((await meshq(node.home, ['ls'])).code).toBe(0)
    await evict(host)
  })

  it('that joins with a malformed address does not take any node down', async () => {
    const token = await tokenOf(nodes[0])
    const host = await intruder(token)
    await joinWith(host, token, ['/ip4/127.0.0.1/tcp/1/bogus', 42, '/ip4/999.1.1.1/tcp/1', '/ip4/127.0.0.1/tcp/9'])
    await host.stop() // gone: every node now redials it, from its member record
    const id = host.peerId.toString()
    const known = async (node: TestNode): Promise<PeerView | undefined> => (await json<PeerView[]>(node.home, ['peers'])).find(p => p.id === id)
    await waitFor(async () => (await known(nodes[1])) != null, { what: 'the member to be known everywhere' })
    expect((await known(nodes[1]))?.addrs).toEqual(['/ip4/127.0.0.1/tcp/9'])
    // every node must stay up through several redial rounds (every 2 s): before the fix, each died in the first
    for (const end = Date.now() + 6000; Date.now() < end; await new Promise(resolve => setTimeout(resolve, 200))) {
      expect(nodes.map(n => n.process.exitCode)).toEqual(nodes.map(() => null))
    }
    await evict(host) // a member gone for good counts in every quorum until it is evicted
    await clusterWorks()
  })

  it('that asks for the output of a job id with a path in it gets nothing', async () => {
    const token = await tokenOf(nodes[0])
    const host = await intruder(token)
    await joinWith(host, token)
    // a file outside the output directory, named like the output of an attempt
    await mkdir(join(nodes[0].home, 'stolen'))
    await writeFile(join(nodes[0].home, 'stolen', '7.stdout'), 'secret')
    const logs = lpStream(await host.dialProtocol(multiaddr(token.addrs[0]), LOGS_PROTOCOL))
    await logs.write(new TextEncoder().encode(JSON.stringify({ job: '../stolen', epoch: 7, stream: 'stdout', follow: false })))
    // before the fix, the first frame was the file's content
    await expect(logs.read({ signal: AbortSignal.timeout(5000) })).rejects.toThrow()
    await evict(host)
  })

  it('that was evicted is disconnected and refused from then on', async () => {
    const token = await tokenOf(nodes[0])
    const host = await intruder(token)
    await joinWith(host, token)
    const id = host.peerId.toString()
    await waitFor(async () => (await json<PeerView[]>(nodes[1].home, ['peers'])).some(p => p.id === id), { what: 'the member to be known everywhere' })
    await ok(nodes[1].home, ['evict', id])
    await waitFor(async () => !(await json<PeerView[]>(nodes[0].home, ['peers'])).some(p => p.id === id), { what: 'the eviction to reach the founder' })
    await waitFor(() => host.getPeers().length === 0, { what: 'the evicted peer to be disconnected', timeout: 15_000 })
    // the connection gate refuses it at once: well before a non-member's 5 s of grace
    await host.dial(multiaddr(token.addrs[0]), { signal: AbortSignal.timeout(5000) }).catch(() => {})
    await waitFor(() => host.getPeers().length === 0, { what: 'the redial to be refused', timeout: 2500, interval: 20 })
    const sync = await host.dialProtocol(multiaddr(token.addrs[0]), SYNC_PROTOCOL, { signal: AbortSignal.timeout(3000) }).then(() => 'opened', () => 'refused')
    expect(sync).toBe('refused')
  })
})

describe('an outsider without the cluster key', () => {
  it('who holds silent sockets open does not keep a key holder from connecting (finding 4)', async () => {
    const token = await tokenOf(nodes[0])
    const target = multiaddr(token.addrs[0])
    const port = Number(target.getComponents().find(c => c.name === 'tcp')?.value)
    const sockets: net.Socket[] = []
    const openSilent = (): void => { sockets.push(net.connect(port, '127.0.0.1').on('error', () => {})) }
    // three new silent sockets a second (one host may open five), as the audit did: before the fix,
    // each held one of 10 pending slots for 10 s, so every slot stayed taken
    const flood = setInterval(openSilent, 333)
    try {
      await waitFor(() => sockets.length >= 15, { what: 'the silent sockets to pile up', timeout: 30_000 })
      const host = await intruder(token)
      let connected = false
      for (let attempt = 0; attempt < 3 && !connected; attempt++) {
        connected = await host.dial(target, { signal: AbortSignal.timeout(10_000) }).then(() => true, () => false)
        if (!connected) await new Promise(resolve => setTimeout(resolve, 1000))
      }
      expect(connected).toBe(true)
    } finally {
      clearInterval(flood)
      for (const socket of sockets) socket.destroy()
    }
  })
})

describe('a member that is evicted', () => {
  it('leaves no invite behind that still admits anyone (finding 5)', async () => {
    const inviteToken = (await ok(nodes[0].home, ['invite'])).trim()
    const third = await startNode({ args: ['--join', inviteToken] })
    try {
      const id = (await json<PeerView[]>(third.home, ['peers'])).find(p => p.self)?.id as string
      await waitFor(async () => (await json<PeerView[]>(nodes[1].home, ['peers'])).some(p => p.id === id), { what: 'the third node to be known everywhere' })
      const token = decodeToken((await ok(third.home, ['invite', '--uses', '100'])).trim())
      await waitFor(async () => (await json<Array<{ id: string }>>(nodes[0].home, ['invite', '--list'])).some(i => i.id === token.invite), { what: 'its invite to reach the founder' })
      await ok(nodes[0].home, ['evict', id])
      await waitFor(async () => !(await json<PeerView[]>(nodes[1].home, ['peers'])).some(p => p.id === id), { what: 'the eviction to reach every node' })

      const host = await intruder(token)
      for (const node of nodes) {
        const list = await json<Array<{ id: string, revoked: boolean }>>(node.home, ['invite', '--list'])
        expect(list.find(i => i.id === token.invite)?.revoked).toBe(true)
        const through = (await tokenOf(node)).addrs[0]
        // before the fix, the evicted member's invite made the new peer a full member
        expect(await tryJoin(host, token, through)).toMatchObject({ ok: false, error: expect.stringMatching(/revoked|no longer a member/) })
      }
      await clusterWorks()
    } finally {
      await third.cleanup()
    }
  })
})

describe('a local user', () => {
  /** Runs a job on the cluster from `dir` and waits until it has ended. */
  async function settled (dir: string, args: string[]): Promise<JobView> {
    const id = (await ok(nodes[0].home, ['sub', '--cwd', dir, ...args])).trim()
    return await waitFor(async () => {
      const job = await json<JobView>(nodes[0].home, ['show', id])
      return ['done', 'failed', 'killed'].includes(job.state) ? job : undefined
    }, { what: `job ${id} to end`, timeout: 60_000 })
  }

  it('who plants a symlink at a job\'s --out path does not get the job to write through it (finding 10)', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      await writeFile(join(dir, 'victim'), 'untouched\n')
      await symlink(join(dir, 'victim'), join(dir, 'out.log'))
      const job = await settled(dir, ['--out', 'out.log', '--', 'echo', 'written through the link'])
      expect(job.state).toBe('failed')
      expect(job.attempts.at(-1)?.failReason).toBe('spawn-error')
      expect(await readFile(join(dir, 'victim'), 'utf8')).toBe('untouched\n')
      expect((await lstat(join(dir, 'out.log'))).isSymbolicLink()).toBe(true)

      expect((await settled(dir, ['--out', 'fresh.log', '--', 'echo', 'private'])).state).toBe('done')
      expect((await stat(join(dir, 'fresh.log'))).mode & 0o777).toBe(0o600)
      expect(await readFile(join(dir, 'fresh.log'), 'utf8')).toBe('private\n')
    } finally {
      await cleanup()
    }
  })

  it('who creates a job\'s --tmpdir directory first does not make it fail (finding 10)', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      const id = (await ok(nodes[0].home, ['sub', '--cwd', dir, '--tmpdir', '--delay', '3s', '--', 'sh', '-c', 'pwd > ../where'])).trim()
      // the names an attempt would have had before the fix: .meshq-<id>-<epoch>
      for (const epoch of [1, 2, 3]) await mkdir(join(dir, `.meshq-${id}-${epoch}`), { mode: 0o777 })
      const job = await waitFor(async () => {
        const view = await json<JobView>(nodes[0].home, ['show', id])
        return ['done', 'failed', 'killed'].includes(view.state) ? view : undefined
      }, { what: 'the job to end', timeout: 60_000 })
      expect(job.state).toBe('done')
      expect((await readFile(join(dir, 'where'), 'utf8')).trim()).toMatch(new RegExp(`/\\.meshq-${id}-\\d+-\\w{6}$`))
    } finally {
      await cleanup()
    }
  })

  it('a job that cannot start because its node is out of file descriptors is lost and runs again, not failed (finding 2)', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      const executorJs = join(CLI, '..', '..', 'exec', 'executor.js')
      // The spawner (which opens each job's output files and pipes) inherits the limit of 64 file
      // descriptors; some 5 per running job, so 30 jobs at once cannot all start.
      const script = `
        import { executor } from ${JSON.stringify(executorJs)}
        const exec = executor({ home: ${JSON.stringify(dir)}, sampleIntervalMs: 3_600_000, killGraceMs: 1000 })
        await exec.start()
        const run = async (epoch, cmd) => await exec.run({ jobId: 'fds-' + epoch, epoch, cmd, cwd: ${JSON.stringify(dir)}, env: {} })
        const crowd = []
        for (let i = 1; i <= 30; i++) crowd.push(await run(i, ['sleep', '300']))
        for (const handle of crowd) handle.kill('killed')
        const reasons = [...new Set(await Promise.all(crowd.map(async handle => (await handle.result).failReason)))].sort()
        const after = await (await run(31, ['true'])).result
        process.stdout.write(JSON.stringify([reasons, after.exitCode]))
        await exec.stop()
      `
      await writeFile(join(dir, 'fds.mjs'), script)
      const output = await new Promise<string>((resolve, reject) => {
        execFile('/bin/sh', ['-c', 'ulimit -n 64 && exec "$0" "$1"', process.execPath, join(dir, 'fds.mjs')], { timeout: 60_000 }, (err, stdout, stderr) => {
          if (err != null) reject(new Error(`${err.message}\n${stderr}`))
          else resolve(stdout)
        })
      })
      // before the fix: spawn-error, the job's own failure, counted against its retries
      expect(JSON.parse(output)).toEqual([['killed', 'lost'], 0])
    } finally {
      await cleanup()
    }
  })
})

describe('a client of the control API', () => {
  /** A free TCP port on 127.0.0.1. */
  async function freePort (): Promise<number> {
    const server = net.createServer()
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as net.AddressInfo
    await new Promise(resolve => server.close(resolve))
    return port
  }

  it('without the token who holds half-open connections is cut off and does not starve the node (finding 2)', async () => {
    const port = await freePort()
    const node = await startNode({ args: ['--api', `127.0.0.1:${port}`] })
    const sockets: net.Socket[] = []
    try {
      let closed = 0
      const connect = (): net.Socket => {
        const socket = net.connect(port, '127.0.0.1').on('error', () => {}).on('close', () => { closed++ })
        sockets.push(socket)
        return socket
      }
      // 100 connections: silent ones, and ones that send their headers a line every second (slowloris)
      const trickles: NodeJS.Timeout[] = []
      for (let i = 0; i < 100; i++) {
        const socket = connect()
        if (i % 2 === 0) {
          socket.once('connect', () => {
            socket.write('GET /v1/status HTTP/1.1\r\nHost: x\r\n')
            trickles.push(setInterval(() => socket.write(`X-Slow-${i}: y\r\n`), 1000))
          })
        }
      }
      try {
        // the local CLI is not starved meanwhile
        expect((await meshq(node.home, ['ls'])).code).toBe(0)
        // before the fix, Node held them for its default 60 s header deadline, and the silent ones for ever
        await waitFor(() => closed === 100, { what: 'the node to close every half-open connection', timeout: 30_000 })
      } finally {
        for (const timer of trickles) clearInterval(timer)
      }

      const apiToken = (await readFile(join(node.home, 'api-token'), 'utf8')).trim()
      const answer = async (headers: Record<string, string>): Promise<{ status: number, connection?: string }> => await new Promise((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/v1/status', headers, agent: new http.Agent({ keepAlive: true }) }, res => {
          res.resume()
          res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }))
        }).on('error', reject)
      })
      // a wrong token gets its answer, and the connection closed with it
      expect(await answer({ authorization: 'Bearer wrong' })).toEqual({ status: 401, connection: 'close' })
      expect((await answer({ authorization: `Bearer ${apiToken}` })).status).toBe(200)
    } finally {
      for (const socket of sockets) socket.destroy()
      await node.cleanup()
    }
  })

  it('who sends a JSON nesting bomb gets 400 at once and the node keeps its pace (finding 12)', async () => {
    const bomb = '{"jobs":' + '['.repeat(8 * 1024 * 1024 - 10) + ']'.repeat(8 * 1024 * 1024 - 10) + '}'
    const post = async (): Promise<{ status: number, body: string }> => await new Promise((resolve, reject) => {
      const req = http.request({ socketPath: join(nodes[0].home, 'meshq.sock'), method: 'POST', path: '/v1/jobs', headers: { 'content-type': 'application/json' } }, res => {
        let body = ''
        res.on('data', chunk => { body += String(chunk) })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
      req.on('error', reject)
      req.end(bomb)
    })
    const answers = await Promise.all([post(), post(), post(), post()])
    for (const { status, body } of answers) {
      expect(status).toBe(400)
      // before the fix, each was parsed whole (seconds of a blocked event loop, ~870 MB) and then refused for its shape
      expect(JSON.parse(body).error.message).toMatch(/nests deeper than 32 levels/)
    }
    await clusterWorks()
  })
})

describe('a key holder that is not a member', () => {
  it('cannot keep a silent member looking alive by relaying its status gossip, which would stall every claim', async () => {
    // a two-member cluster: a real node, and a member that stops talking to it. Alone, the node
    // runs jobs once its only peer has been silent for the alone window (half the TTR): unless it
    // keeps hearing that peer's status, here relayed through a key holder that is not a member.
    const node = await startNode()
    others.push(node)
    const token = await tokenOf(node)
    const nodeId = token.addrs[0].split('/p2p/')[1]
    let shunning = false
    const member = await intruder(token, peer => !(shunning && peer === nodeId))
    await joinWith(member, token) // no addresses: the node cannot dial it back
    shunning = true
    await member.hangUp(multiaddr(token.addrs[0]))
    const relay = await intruder(token)
    const topic = `meshq/${token.cluster}/status/1`
    relay.services.pubsub.subscribe(topic)
    let relayed = 0
    relay.services.pubsub.addEventListener('message', event => { if (event.detail.topic === topic) relayed++ })
    await relay.dial(member.getMultiaddrs()[0])

    const boot = 'replayer'
    let seq = 0
    let connections = 0
    const gossip = setInterval(() => {
      const status = { peer: member.peerId.toString(), slots: 4, running: 0, draining: false, tags: [], boot, seq: ++seq, at: Date.now() }
      void member.services.pubsub.publish(topic, new TextEncoder().encode(JSON.stringify(status))).catch(() => {})
      // the node hangs up on a non-member after 5 s: the relay comes straight back
      if (relay.getConnections().every(c => c.remotePeer.toString() !== nodeId)) {
        void relay.dial(multiaddr(token.addrs[0])).then(() => { connections++ }, () => {})
      }
    }, 250)
    try {
      const id = (await ok(node.home, ['sub', '--ttr', '20s', '--', 'true'])).trim()
      // before the fix the relayed status kept the member live, the claim waited for its vote, and the job stayed ready
      await waitFor(async () => (await json<JobView>(node.home, ['show', id])).state === 'done', { what: 'the job to run alone', timeout: 40_000 })
      expect(relayed).toBeGreaterThan(0)
      expect(connections).toBeGreaterThan(0)
    } finally {
      clearInterval(gossip)
    }
  })
})
