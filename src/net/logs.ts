/**
 * `/meshq/logs/1`: the output of an attempt, streamed from the node that ran it to a member that
 * asks (`meshq logs` and `sub --wait` on another node).
 */
import createDebug from 'debug'
import type { Connection, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { PeerUnreachableError } from '../errors.js'
import { isJobId } from '../crdt/facts.js'
import type { MeshqLibp2p } from './p2p.js'

const log = createDebug('meshq:mesh')

export const LOGS_PROTOCOL = '/meshq/logs/1'
/** Largest chunk of output in one logs frame. */
const MAX_LOG_FRAME = 1024 * 1024
const MAX_REQUEST_BYTES = 4096
/** How long the answering node waits for the request. */
const REQUEST_TIMEOUT_MS = 5000

/** What `/meshq/logs/1` asks for: the output of one attempt. */
export interface LogRequest {
  job: string
  epoch: number
  stream: 'stdout' | 'stderr'
  follow: boolean
}

/** This node's output of an attempt, as served to members. */
export type LogSource = (request: LogRequest, signal: AbortSignal) => AsyncIterable<Uint8Array>

export function parseLogRequest (bytes: Uint8Array): LogRequest | undefined {
  try {
    const r = JSON.parse(new TextDecoder().decode(bytes))
    const valid = isJobId(r?.job) && Number.isSafeInteger(r.epoch) && (r.stream === 'stdout' || r.stream === 'stderr') &&
      typeof r.follow === 'boolean'
    return valid ? { job: r.job, epoch: r.epoch, stream: r.stream, follow: r.follow } : undefined
  } catch {
    return undefined
  }
}

export interface LogsInit {
  host: MeshqLibp2p
  allowed: (peer: string) => boolean
  logs: LogSource
}

export class LogsProtocol {
  constructor (private readonly init: LogsInit) {}

  async start (): Promise<void> {
    await this.init.host.handle(LOGS_PROTOCOL, (stream, connection) => { void this.answer(stream, connection) })
  }

  /** The output of an attempt that ran on another node, streamed from it. */
  async * fetch (peer: string, request: LogRequest, signal: AbortSignal): AsyncIterable<Uint8Array> {
    let stream: Stream
    try {
      stream = await this.init.host.dialProtocol(peerIdFromString(peer), LOGS_PROTOCOL, { signal })
    } catch (err) {
      throw new PeerUnreachableError(`cannot fetch the output from ${peer}, which ran the job: ${(err as Error).message}`)
    }
    const lp = lpStream(stream, { maxDataLength: MAX_LOG_FRAME })
    try {
      await lp.write(new TextEncoder().encode(JSON.stringify(request)), { signal })
      for (;;) {
        const chunk = await lp.read({ signal })
        if (chunk.byteLength === 0) return // the end mark
        yield chunk.subarray()
      }
    } finally {
      stream.abort(new Error('done'))
    }
  }

  private async answer (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer.toString()
    const lp = lpStream(stream, { maxDataLength: MAX_REQUEST_BYTES })
    const done = new AbortController()
    stream.addEventListener('close', () => { done.abort() })
    try {
      const request = this.init.allowed(peer)
        ? parseLogRequest((await lp.read({ signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).subarray())
        : undefined
      if (request == null) throw new Error('refused: not a member, or a malformed request')
      for await (const chunk of this.init.logs(request, done.signal)) {
        for (let at = 0; at < chunk.byteLength; at += MAX_LOG_FRAME) await lp.write(chunk.subarray(at, at + MAX_LOG_FRAME))
      }
      await lp.write(new Uint8Array(0))
      await stream.close()
    } catch (err) {
      log('logs for %s: %s', peer, (err as Error).message)
      stream.abort(err as Error)
    }
  }
}
