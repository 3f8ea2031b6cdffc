/**
 * The version handshake: every node announces `meshq/<version> (protocol <major>.<minor>)` as its
 * libp2p identify agent, and refuses peers of another protocol major version with a clear message.
 */
import { PROTOCOL_VERSION, VERSION } from '../version.js'

export interface ProtocolVersion {
  major: number
  minor: number
}

const AGENT = /^meshq\/(\S+) \(protocol (\d+)\.(\d+)\)$/

export function parseProtocolVersion (value: string): ProtocolVersion | undefined {
  const match = /^(\d+)\.(\d+)$/.exec(value)
  return match == null ? undefined : { major: Number(match[1]), minor: Number(match[2]) }
}

/**
 * The protocol version this node speaks. `MESHQ_TEST_PROTOCOL` makes a node announce another one:
 * the tests use it to stand for an older or newer build.
 */
export function localProtocol (env: NodeJS.ProcessEnv = process.env): ProtocolVersion {
  const version = parseProtocolVersion(env.MESHQ_TEST_PROTOCOL ?? PROTOCOL_VERSION)
  if (version == null) throw new Error(`bad MESHQ_TEST_PROTOCOL: '${env.MESHQ_TEST_PROTOCOL ?? ''}' (expected MAJOR.MINOR)`)
  return version
}

export function agentString (protocol: ProtocolVersion): string {
  return `meshq/${VERSION} (protocol ${protocol.major}.${protocol.minor})`
}

/** The meshq version and protocol a peer announced; undefined for anything that is not meshq's agent. */
export function parseAgent (agent: string | undefined): { version: string, protocol: ProtocolVersion } | undefined {
  const match = AGENT.exec(agent ?? '')
  return match == null ? undefined : { version: match[1], protocol: { major: Number(match[2]), minor: Number(match[3]) } }
}

/** Why a peer's agent is refused, or undefined when it may stay. */
export function incompatibility (mine: ProtocolVersion, agent: string | undefined): string | undefined {
  const theirs = parseAgent(agent)
  if (theirs == null) return `it is not a meshq node of a known version (agent '${agent ?? ''}')`
  if (theirs.protocol.major !== mine.major) {
    const spoken = `${theirs.protocol.major}.${theirs.protocol.minor} (meshq ${theirs.version})`
    return `it speaks meshq protocol ${spoken} and this node speaks ${mine.major}.${mine.minor}: upgrade one of them`
  }
  return undefined
}
