/**
 * The control API: JSON over HTTP on the node's unix socket, and optionally on TCP with a bearer token.
 * Routes (routes.ts) map onto the `Engine` interface through the handlers of handle-*.ts; see docs/api.md.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { chmod, lstat, rm } from 'node:fs/promises'
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { HomeLockedError, UnauthorizedError } from '../errors.js'
import { dispatcher, sendError } from './dispatch.js'
import type { Engine } from './engine.js'
import { clusterHandlers } from './handle-cluster.js'
import { jobHandlers } from './handle-jobs.js'
import { streamHandlers } from './handle-streams.js'

export interface ControlServerInit {
  engine: Engine
  socketPath: string
  tcp?: { host: string, port: number, token: string }
}

export interface ControlServer {
  start: () => Promise<void>
  stop: () => Promise<void>
  /** The bound TCP address (after `start`), when TCP is enabled. */
  tcpAddress?: () => { host: string, port: number }
}

/**
 * A client has this long to send a request's headers, and its whole body: connections that trickle
 * bytes (slowloris) are closed instead of holding the node's file descriptors. Answers, streams
 * included, are not limited. Node checks these deadlines every `connectionsCheckingInterval`.
 */
const REQUEST_LIMITS: http.ServerOptions = { headersTimeout: 5000, requestTimeout: 60_000, connectionsCheckingInterval: 1000 }

/** Node's `headersTimeout` starts with the first byte: a connection that sends none is closed after this. */
const SILENT_CONNECTION_MS = 5000

/** Open TCP API connections, at most; more are closed at once. The unix socket has no cap. */
export const MAX_TCP_CONNECTIONS = 64

export function controlServer (init: ControlServerInit): ControlServer {
  const { engine, socketPath, tcp } = init
  const dispatch = dispatcher({ ...jobHandlers(engine), ...clusterHandlers(engine), ...streamHandlers(engine) })
  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    dispatch(req, res).catch(() => res.destroy())
  }
  const unixServer = http.createServer(REQUEST_LIMITS, handle)
  const tokenDigest = tcp === undefined ? undefined : digest(tcp.token)
  const tcpServer = tcp === undefined
    ? undefined
    : http.createServer(REQUEST_LIMITS, (req, res) => {
      if (!authorized(req.headers.authorization, tokenDigest as Buffer)) {
        // no second try on this connection: whoever lacks the token gets nothing to hold open
        res.setHeader('connection', 'close')
        req.resume()
        sendError(res, new UnauthorizedError('missing or wrong bearer token'))
        return
      }
      handle(req, res)
    })
  if (tcpServer !== undefined) tcpServer.maxConnections = MAX_TCP_CONNECTIONS
  for (const server of [unixServer, tcpServer]) if (server !== undefined) closeSilentConnections(server)

  const server: ControlServer = {
    async start () {
      await removeStaleSocket(socketPath)
      await listen(unixServer, { path: socketPath })
      await chmod(socketPath, 0o600)
      if (tcpServer !== undefined && tcp !== undefined) await listen(tcpServer, { host: tcp.host, port: tcp.port })
    },
    async stop () {
      await Promise.all([unixServer, tcpServer].map(async s => {
        if (s === undefined || !s.listening) return
        const closed = new Promise(resolve => s.close(resolve))
        s.closeAllConnections()
        await closed
      }))
      await rm(socketPath, { force: true })
    }
  }
  if (tcpServer !== undefined) {
    server.tcpAddress = () => {
      const address = tcpServer.address() as AddressInfo | null
      if (address === null) throw new Error('the TCP API is not listening')
      return { host: address.address, port: address.port }
    }
  }
  return server
}

function digest (token: string): Buffer {
  return createHash('sha256').update(token).digest()
}

/** Compares the bearer token in constant time (both sides hashed to the same length first). */
function authorized (header: string | undefined, expected: Buffer): boolean {
  const match = /^Bearer +(\S+) *$/i.exec(header ?? '')
  const given = digest(match?.[1] ?? '')
  return timingSafeEqual(given, expected) && match !== null
}

/** Closes a connection that sends no request within SILENT_CONNECTION_MS of opening. */
function closeSilentConnections (server: http.Server): void {
  server.on('connection', (socket: net.Socket) => { socket.setTimeout(SILENT_CONNECTION_MS, () => socket.destroy()) })
  server.on('request', (req: http.IncomingMessage) => { req.socket.setTimeout(0) })
}

async function listen (server: http.Server, options: net.ListenOptions): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

/** Removes a socket file left by a node that is gone; refuses if a node still answers on it. */
async function removeStaleSocket (socketPath: string): Promise<void> {
  try {
    await lstat(socketPath)
  } catch {
    return
  }
  const alive = await new Promise<boolean>(resolve => {
    const socket = net.connect(socketPath)
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => resolve(false))
  })
  if (alive) throw new HomeLockedError(`another process is serving on ${socketPath}`)
  await rm(socketPath, { force: true })
}
