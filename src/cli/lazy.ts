/**
 * The heavy parts of meshq, loaded only by the commands that need them: client commands must start
 * fast and never load libp2p, automerge, level, execa or ink.
 *
 * The paths are held in variables so that tsc does not resolve them: those modules are built by
 * other parts of the project and the CLI only relies on the one function each exports.
 */
import { MeshqError } from '../errors.js'
import type { ApiClient } from '../api/client.js'
import type { NodeOptions } from './node-options.js'

export interface RunTopOptions {
  client: ApiClient
  /** Print one snapshot and exit instead of the interactive dashboard. */
  once: boolean
  json: boolean
}

/** `src/node/run.ts`: runs the node in the foreground; resolves when it has stopped. */
export type RunNode = (options: NodeOptions) => Promise<number | undefined | void>
/** `src/tui/main.ts`: the dashboard; resolves when the user quits. */
export type RunTop = (options: RunTopOptions) => Promise<number | undefined | void>

async function load<T> (specifier: string, name: string, what: string): Promise<T> {
  let mod: Record<string, unknown>
  try {
    mod = await import(specifier)
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code === 'ERR_MODULE_NOT_FOUND' && (err as Error).message.includes(specifier.replace(/^\.*\//, ''))) {
      throw new MeshqError(`${what} is not part of this build (${specifier} is missing)`)
    }
    throw err
  }
  if (typeof mod[name] !== 'function') throw new MeshqError(`${what}: ${specifier} does not export ${name}()`)
  return mod[name] as T
}

export async function loadRunNode (): Promise<RunNode> {
  const specifier = '../node/run.js'
  return await load<RunNode>(specifier, 'runNode', 'the node')
}

export async function loadRunTop (): Promise<RunTop> {
  const specifier = '../tui/main.js'
  return await load<RunTop>(specifier, 'runTop', 'the dashboard')
}
