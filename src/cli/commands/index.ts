import type { Command } from '../context.js'
import { drain, gc, limit, pause, peers, resume, stats, top } from './cluster.js'
import { events } from './events.js'
import { kill, logs, ls, retry, rm, show } from './jobs.js'
import { mod } from './modify.js'
import { node } from './node.js'
import { connect, evict, invite } from './members.js'
import { completion, version } from './meta.js'
import { status } from './status.js'
import { sub } from './sub.js'
import { wait } from './wait.js'

/** Every command, in the order `meshq help` lists them. */
export const COMMANDS: ReadonlyMap<string, Command> = new Map(
  [
    node, sub, ls, show, status, logs, events, wait, kill, retry, rm, mod, pause, resume, limit, drain, stats, peers, invite, evict,
    connect, gc, top, version, completion
  ].map(c => [c.name, c])
)
