/**
 * A minimal HTTP/1.1 client, one connection per request, for the CLI. Loading `node:http` costs
 * about 0.1 s of CPU in Node 24 (it brings undici along), more than the rest of a command; this
 * speaks only what the control API's server answers: a status line, headers, and a body framed
 * by content-length, by chunked transfer coding, or by the end of the connection.
 */
import { connect } from 'node:net'
import type { Socket } from 'node:net'

export type Endpoint = { socketPath: string } | { host: string, port: number }

export interface LiteResponse {
  status: number
  /** Header names in lower case. */
  headers: Map<string, string>
  /** The body's bytes, unframed. */
  body: AsyncIterable<Buffer>
  /** Closes the connection (the body ends with an error if it was still being read). */
  destroy: () => void
}

export class HttpProtocolError extends Error {
  override name = 'HttpProtocolError'
}

/** Longest status line plus headers accepted. */
const MAX_HEAD_BYTES = 64 * 1024
const CRLF = Buffer.from('\r\n')

/**
 * Sends one request and resolves with the response once its head has arrived. Connection errors
 * (ENOENT, ECONNREFUSED, ...) reject with the socket's error, with its `code`.
 */
export async function request (
  endpoint: Endpoint, method: string, path: string, headers: Record<string, string>, payload?: Buffer, signal?: AbortSignal
): Promise<LiteResponse> {
  signal?.throwIfAborted()
  const socket = 'socketPath' in endpoint ? connect(endpoint.socketPath) : connect(endpoint.port, endpoint.host)
  const abort = (): void => { socket.destroy(signal?.reason as Error) }
  signal?.addEventListener('abort', abort, { once: true })
  socket.once('close', () => signal?.removeEventListener('abort', abort))
  const host = 'host' in endpoint ? `${endpoint.host}:${endpoint.port}` : 'localhost'
  const lines = [
    `${method} ${path} HTTP/1.1`, `host: ${host}`, 'connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)
  ]
  if (payload !== undefined) lines.push(`content-length: ${payload.length}`)
  // One write: a server that answers before reading the body (connection: close) would otherwise
  // have closed by the time a second write went out, and that write's EPIPE would hide its answer.
  const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1')
  socket.write(payload === undefined ? head : Buffer.concat([head, payload]))
  try {
    const reader = new ByteReader(socket)
    const { status, headers: head } = parseHead(await reader.until(Buffer.from('\r\n\r\n'), MAX_HEAD_BYTES))
    return { status, headers: head, body: body(reader, head), destroy: () => { socket.destroy() } }
  } catch (err) {
    socket.destroy()
    throw err
  }
}

function parseHead (head: Buffer): { status: number, headers: Map<string, string> } {
  const [statusLine, ...fields] = head.toString('latin1').split('\r\n')
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)
  if (match == null) throw new HttpProtocolError(`not an HTTP response: ${JSON.stringify(statusLine.slice(0, 40))}`)
  const headers = new Map<string, string>()
  for (const field of fields) {
    const colon = field.indexOf(':')
    if (colon > 0) headers.set(field.slice(0, colon).trim().toLowerCase(), field.slice(colon + 1).trim())
  }
  return { status: Number(match[1]), headers }
}

async function * body (reader: ByteReader, headers: Map<string, string>): AsyncIterable<Buffer> {
  if (/\bchunked\b/i.test(headers.get('transfer-encoding') ?? '')) {
    for (;;) {
      const sizeLine = (await reader.until(CRLF, 1024)).toString('latin1')
      const size = Number.parseInt(sizeLine, 16)
      if (!Number.isSafeInteger(size) || size < 0) throw new HttpProtocolError(`bad chunk size ${JSON.stringify(sizeLine.slice(0, 20))}`)
      if (size === 0) return // trailers, if any, are not read: the connection closes
      for (let left = size; left > 0;) {
        const chunk = await reader.some(left)
        left -= chunk.length
        yield chunk
      }
      await reader.until(CRLF, 2)
    }
  }
  const length = headers.get('content-length')
  let left = length == null ? Infinity : Number(length)
  while (left > 0) {
    const chunk = await reader.some(left, length == null)
    if (chunk.length === 0) return
    left -= chunk.length
    yield chunk
  }
}

/** Pulls bytes from a socket on demand. */
class ByteReader {
  readonly #source: AsyncIterator<Buffer>
  #buffered: Buffer = Buffer.alloc(0)

  constructor (socket: Socket) {
    this.#source = (socket as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
  }

  /** The bytes before the next `delimiter` (consumed with it). */
  async until (delimiter: Buffer, max: number): Promise<Buffer> {
    for (;;) {
      const at = this.#buffered.indexOf(delimiter)
      if (at >= 0) {
        const before = this.#buffered.subarray(0, at)
        this.#buffered = this.#buffered.subarray(at + delimiter.length)
        return before
      }
      if (this.#buffered.length > max) throw new HttpProtocolError('response head or chunk line too long')
      if (!await this.#fill()) throw new HttpProtocolError('the connection closed in the middle of a response')
    }
  }

  /** Between 1 and `max` bytes; with `endOk`, an empty buffer at the end of the connection. */
  async some (max: number, endOk = false): Promise<Buffer> {
    if (this.#buffered.length === 0 && !await this.#fill()) {
      if (endOk) return Buffer.alloc(0)
      throw new HttpProtocolError('the connection closed in the middle of a response')
    }
    const out = this.#buffered.subarray(0, max)
    this.#buffered = this.#buffered.subarray(out.length)
    return out
  }

  async #fill (): Promise<boolean> {
    const next = await this.#source.next()
    if (next.done === true) return false
    this.#buffered = this.#buffered.length === 0 ? next.value : Buffer.concat([this.#buffered, next.value])
    return true
  }
}
