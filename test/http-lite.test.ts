/**
 * The CLI's HTTP client against a real node:http server: bodies framed by content-length, by
 * chunks (streams) and by the end of the connection; errors of the connection; aborts.
 */
import http from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { request } from '../src/api/http-lite.js'
import type { LiteResponse } from '../src/api/http-lite.js'
import { tempDir } from './helpers.js'

let home: { dir: string, cleanup: () => Promise<void> }
let server: http.Server
let socketPath: string
const seen: Array<{ method?: string, url?: string, body: string, headers: http.IncomingHttpHeaders }> = []

beforeAll(async () => {
  home = await tempDir()
  socketPath = join(home.dir, 'api.sock')
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', chunk => chunks.push(chunk))
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, body: Buffer.concat(chunks).toString(), headers: req.headers })
      if (req.url === '/length') res.writeHead(200, { 'content-length': 5 }).end('hello')
      else if (req.url === '/chunked') {
        res.writeHead(201, { 'content-type': 'application/x-ndjson' })
        res.write('{"a":1}\n')
        setTimeout(() => { res.write('{"b":"' + 'x'.repeat(100_000) + '"}\n'); res.end() }, 20)
      } else if (req.url === '/close') {
        // raw: no length, no chunks, the body ends with the connection
        req.socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\nnot found here')
      } else if (req.url === '/forever') {
        res.writeHead(200)
        res.write('started\n')
      } else res.writeHead(204).end()
    })
  })
  await new Promise<void>(resolve => server.listen(socketPath, resolve))
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise(resolve => server.close(resolve))
  await home.cleanup()
})

async function text (res: LiteResponse): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of res.body) chunks.push(chunk)
  return Buffer.concat(chunks).toString()
}

describe('http-lite', () => {
  it('sends method, path, headers and body, and reads a content-length body', async () => {
    const res = await request({ socketPath }, 'POST', '/length', { 'content-type': 'application/json' }, Buffer.from('{"x":"é"}'))
    expect(res.status).toBe(200)
    expect(await text(res)).toBe('hello')
    expect(seen.at(-1)).toMatchObject({ method: 'POST', url: '/length', body: '{"x":"é"}' })
    expect(seen.at(-1)?.headers['content-type']).toBe('application/json')
  })

  it('reads a chunked body across writes, and one that ends with the connection', async () => {
    const chunked = await request({ socketPath }, 'GET', '/chunked', {})
    expect(chunked.status).toBe(201)
    expect(chunked.headers.get('content-type')).toBe('application/x-ndjson')
    const body = await text(chunked)
    expect(body.split('\n').map(line => line.length)).toEqual([7, 100_008, 0])
    const closed = await request({ socketPath }, 'GET', '/close', {})
    expect(closed.status).toBe(404)
    expect(await text(closed)).toBe('not found here')
    const empty = await request({ socketPath }, 'GET', '/nothing', {})
    expect([empty.status, await text(empty)]).toEqual([204, ''])
  })

  it('rejects with the socket error when nothing listens, and with the reason when aborted', async () => {
    await expect(request({ socketPath: join(home.dir, 'missing.sock') }, 'GET', '/', {})).rejects.toMatchObject({ code: 'ENOENT' })
    const abort = new AbortController()
    const res = await request({ socketPath }, 'GET', '/forever', {}, undefined, abort.signal)
    const reading = text(res)
    abort.abort(new Error('stop'))
    await expect(reading).rejects.toThrow('stop')
  })
})
