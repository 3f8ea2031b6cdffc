/**
 * The cap on a job's environment, shared by the node (which refuses more) and the CLI (which says
 * how to narrow the copy of the submitter's environment). Dependency-free: client commands load it.
 */

/** Largest environment of a job (names and values): it is replicated with the spec to every node. */
export const MAX_ENV_BYTES = 64 * 1024

/** An environment's size as the cap counts it: `NAME=value` and a NUL for each variable. */
export function envBytes (env: Record<string, string>): number {
  let bytes = 0
  for (const [name, value] of Object.entries(env)) bytes += Buffer.byteLength(name) + Buffer.byteLength(value) + 2
  return bytes
}
