import { MeshqError } from '../errors.js'

/** `run()` was called before `start()` or after `stop()`. */
export class ExecutorNotRunningError extends MeshqError {
  override name = 'ExecutorNotRunningError'
  override readonly status = 503
}

/** The orphan-guard watchdog process could not be started. */
export class WatchdogError extends MeshqError {
  override name = 'WatchdogError'
}

/** Jobs cannot be put in cgroups here; the executor falls back to process groups. */
export class ContainmentError extends MeshqError {
  override name = 'ContainmentError'
}
