/**
 * Named errors. The control API sends `{error: {name, message}}` and the CLI maps names to exit codes,
 * so the names are part of the contract.
 */

export class MeshqError extends Error {
  override name = 'MeshqError'
  /** HTTP status the control API answers with. */
  readonly status: number = 500
}

export class UsageError extends MeshqError {
  override name = 'UsageError'
  override readonly status = 400
}

export class InvalidJobError extends MeshqError {
  override name = 'InvalidJobError'
  override readonly status = 400
}

export class JobNotFoundError extends MeshqError {
  override name = 'JobNotFoundError'
  override readonly status = 404
}

export class MissingDependencyError extends MeshqError {
  override name = 'MissingDependencyError'
  override readonly status = 400
}

export class DependencyCycleError extends MeshqError {
  override name = 'DependencyCycleError'
  override readonly status = 400
}

export class JobRunningError extends MeshqError {
  override name = 'JobRunningError'
  override readonly status = 409
}

export class HomeLockedError extends MeshqError {
  override name = 'HomeLockedError'
}

export class StoreCorruptError extends MeshqError {
  override name = 'StoreCorruptError'
}

export class StorageError extends MeshqError {
  override name = 'StorageError'
  override readonly status = 507
}

/** A node cannot listen on an address it was given (in use, not this host's, no permission). */
export class ListenError extends MeshqError {
  override name = 'ListenError'
}

export class NodeUnreachableError extends MeshqError {
  override name = 'NodeUnreachableError'
}

export class UnauthorizedError extends MeshqError {
  override name = 'UnauthorizedError'
  override readonly status = 401
}

export class InviteRefusedError extends MeshqError {
  override name = 'InviteRefusedError'
  override readonly status = 403
}

export class JoinFailedError extends MeshqError {
  override name = 'JoinFailedError'
}

export class PeerNotFoundError extends MeshqError {
  override name = 'PeerNotFoundError'
  override readonly status = 404
}

export class PeerUnreachableError extends MeshqError {
  override name = 'PeerUnreachableError'
  override readonly status = 502
}

/** A read could not be sure it saw what other members have (they were slow, or unreachable). */
export class NotCaughtUpError extends MeshqError {
  override name = 'NotCaughtUpError'
  override readonly status = 504
}

/**
 * Any thrown value as an Error with a message a person can read. Some stream APIs reject with an
 * `Event` (a stream's `close`, an `abort`), whose String() is "[object Event]".
 */
export function asError (err: unknown): Error {
  if (err instanceof Error) return err
  if (typeof Event !== 'undefined' && err instanceof Event) {
    const cause = (err as Event & { error?: unknown }).error
    return new Error(cause instanceof Error ? cause.message : `the stream ended (${err.type} event)`)
  }
  return new Error(String(err))
}
