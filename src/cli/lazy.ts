/**
 * The heavy parts of meshq, loaded only by the commands that need them: client commands must start
 * fast and never load libp2p, automerge, level, execa or ink.
 */
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
  return (await import('../tui/main.js')).runTop
}
