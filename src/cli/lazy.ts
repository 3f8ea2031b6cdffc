/**
 * The heavy parts of meshq, loaded only by the commands that need them: client commands must start
 * fast and never load libp2p, automerge, level, execa or ink.
 */
import type { NodeOptions } from '../node/options.js'
import type { RunTop } from '../tui/main.js'

/** `src/node/run.ts`: runs the node in the foreground; resolves when it has stopped. */
export async function runNode (options: NodeOptions): Promise<number | undefined | void> {
  const node = await import('../node/run.js')
  return await node.runNode(options)
}

export async function loadRunTop (): Promise<RunTop> {
  return (await import('../tui/main.js')).runTop
}
