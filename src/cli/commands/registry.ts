/**
 * Where each command lives, in the order `meshq help` lists them. A command line loads only the
 * module of its command: loading every command's module cost a third of `meshq ls`'s wall time.
 */
import type { Command } from '../context.js'

const LOADERS = {
  node: async () => (await import('./node.js')).node,
  sub: async () => (await import('./sub.js')).sub,
  ls: async () => (await import('./jobs.js')).ls,
  show: async () => (await import('./jobs.js')).show,
  status: async () => (await import('./status.js')).status,
  logs: async () => (await import('./jobs.js')).logs,
  events: async () => (await import('./events.js')).events,
  wait: async () => (await import('./wait.js')).wait,
  kill: async () => (await import('./jobs.js')).kill,
  retry: async () => (await import('./jobs.js')).retry,
  rm: async () => (await import('./jobs.js')).rm,
  mod: async () => (await import('./modify.js')).mod,
  pause: async () => (await import('./cluster.js')).pause,
  resume: async () => (await import('./cluster.js')).resume,
  limit: async () => (await import('./cluster.js')).limit,
  drain: async () => (await import('./cluster.js')).drain,
  stats: async () => (await import('./cluster.js')).stats,
  peers: async () => (await import('./cluster.js')).peers,
  invite: async () => (await import('./members.js')).invite,
  evict: async () => (await import('./members.js')).evict,
  connect: async () => (await import('./members.js')).connect,
  gc: async () => (await import('./cluster.js')).gc,
  top: async () => (await import('./cluster.js')).top,
  version: async () => (await import('./meta.js')).version,
  completion: async () => (await import('./meta.js')).completion
} satisfies Record<string, () => Promise<Command>>

/** The command of that name, or undefined if there is none. */
export async function loadCommand (name: string): Promise<Command | undefined> {
  return Object.hasOwn(LOADERS, name) ? await LOADERS[name as keyof typeof LOADERS]() : undefined
}

/** Every command, in order (loads every command's module). */
export async function loadCommands (): Promise<Command[]> {
  return await Promise.all(Object.values(LOADERS).map(async load => await load()))
}
