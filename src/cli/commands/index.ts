import type { Command } from '../context.js'
import { loadCommands } from './registry.js'

/**
 * Every command, in the order `meshq help` lists them, for help, completion and the reference.
 * Importing this loads every command's module: running one command needs only `loadCommand`.
 */
export const COMMANDS: ReadonlyMap<string, Command> = new Map((await loadCommands()).map(c => [c.name, c]))
