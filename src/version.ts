/** meshq's version; a test checks it matches package.json. */
export const VERSION = '0.1.0'

/**
 * The version of meshq's wire protocols (join, sync, logs, gossip). Nodes of the same major
 * version interoperate: a minor version only adds optional fields and messages that older nodes
 * ignore. A new major version also changes the protocol ids (`/meshq/sync/2`).
 */
export const PROTOCOL_VERSION = '2.2'
