/**
 * What the control API's server and client agree on. Dependency-free: the CLI imports it.
 */

/** Every route lives under this prefix. */
export const API_PREFIX = '/v1'

/** The largest request body the server reads. */
export const MAX_BODY_BYTES = 16 * 1024 * 1024

/** The file name of the control socket inside a node's home. */
export const SOCKET_NAME = 'meshq.sock'

/** The body of every error answer. */
export interface ApiErrorBody {
  error: { name: string, message: string }
}
