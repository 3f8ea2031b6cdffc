/**
 * The heavy parts of meshq, loaded only by the commands that need them: client commands must start
 * fast and never load libp2p, automerge, level, execa or ink.
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

/** `src/tui/main.ts`: the dashboard; resolves (optionally to an exit code) when the user quits. */
export type RunTop = (options: RunTopOptions) => Promise<number | undefined | void>

/** `src/node/run.ts`: runs the node in the foreground; resolves when it has stopped. */
export async function runNode (options: NodeOptions): Promise<number | undefined | void> {
  const node = await import('../node/run.js')
  return await node.runNode(options)
}

export async function loadRunTop (): Promise<RunTop> {
  // Held in a variable so that tsc does not resolve it: the dashboard is built separately and
  // may be absent from a build; the CLI then says so instead of failing to compile.
  const specifier = '../tui/main.js'
  let mod: { runTop?: unknown }
  try {
    mod = await import(specifier)
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && (err as Error).message.includes('tui/main.js')) {
      throw new MeshqError('the dashboard is not part of this build (src/tui/main.ts is missing)')
    }
    throw err
  }
  if (typeof mod.runTop !== 'function') throw new MeshqError('the dashboard: src/tui/main.ts does not export runTop()')
  return mod.runTop as RunTop
}
