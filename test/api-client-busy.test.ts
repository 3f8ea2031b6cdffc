/**
 * A node too busy to accept connections (its accept queue full: a stalled event loop and many
 * clients, e.g. `meshq wait` of a thousand ids) is waited for, not reported unreachable.
 */
import { spawn } from 'node:child_process'
import { afterAll, expect, it } from 'vitest'
import { join } from 'node:path'
import { ApiClient } from '../src/api/client.js'
import { tempDir } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterAll(async () => { for (const c of cleanups.splice(0)) await c() })

/** A server with an accept queue of one, whose event loop is blocked for a while after it starts listening. */
const SERVER = `
const net = require('node:net')
const server = net.createServer(socket => {
  socket.once('data', () => socket.end('HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: 11\\r\\nconnection: close\\r\\n\\r\\n{"ok":true}'))
})
server.listen({ path: process.argv[1], backlog: 1 }, () => {
  process.stdout.write('listening\\n')
  const until = Date.now() + 1500
  while (Date.now() < until) {}
})
`

it('a client whose connections overflow a stalled node\'s accept queue tries again, and every call gets its answer', async () => {
  const work = await tempDir('meshq-busy-')
  cleanups.push(work.cleanup)
  const path = join(work.dir, 'meshq.sock')
  const server = spawn(process.execPath, ['-e', SERVER, path], { stdio: ['ignore', 'pipe', 'inherit'] })
  cleanups.push(async () => { server.kill('SIGKILL') })
  await new Promise<void>(resolve => server.stdout.once('data', () => { resolve() }))
  const client = new ApiClient(path)
  const answers = await Promise.allSettled(Array.from({ length: 64 }, async () => await client.request<{ ok: boolean }>('GET', '/jobs')))
  expect(answers.filter(a => a.status === 'rejected').map(a => String((a as PromiseRejectedResult).reason))).toEqual([])
  expect(answers.every(a => a.status === 'fulfilled' && a.value.ok)).toBe(true)
})
