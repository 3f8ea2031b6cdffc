/**
 * What the node and its spawner process (`main.ts`) say to each other over the IPC channel of
 * `child_process.fork`, one JSON message each.
 */
import type { OutputSummary } from '../output.js'
import type { OutputPaths } from '../output-files.js'
import type { ProcStat } from '../proc.js'

/** Start one job: the node → the spawner. */
export interface SpawnOrder {
  /** The node's number for this order; every answer names it. */
  id: number
  cmd: string[]
  cwd: string
  /** The job's whole environment on top of the node's (`MESHQ_JOB_ID` and the like included). */
  env: Record<string, string>
  outputs: {
    paths: OutputPaths
    /** Also append all output to this absolute path. */
    out?: string
    capBytes: number
  }
  /** Start the job in the cgroup `dir`, coming back to `home` after the spawn. */
  cgroup?: { dir: string, home: string }
  /** After the leader exits, how long its output may stay open (held by a process outside its reach). */
  drainMs: number
}

/**
 * Why a job could not start. `stage`: its output files could not be opened, the spawn was refused at
 * once, the spawn failed, or (said by the node's end) the spawner died first.
 */
export interface SpawnFailed {
  type: 'failed'
  id: number
  stage: 'outputs' | 'refused' | 'spawn' | 'spawner'
  /** The error's code, e.g. `ENOENT`. */
  code?: string
  message: string
}

/** The job's leader runs: its pid is its process group id. */
export interface Spawned {
  type: 'spawned'
  id: number
  pid: number
  /** When it was spawned (wall-clock ms, this host's clock, as `Exited.endedAt`). */
  startedAt: number
  /** The leader read right after the spawn, before the spawner could reap it; undefined if already gone. */
  stat?: ProcStat
  /** Born in its cgroup. */
  contained: boolean
}

/** The leader exited; what is left of its tree may still hold its output open. */
export interface Exited {
  type: 'exited'
  id: number
  endedAt: number
}

/** The job's output is closed and counted: the order is over. */
export interface Done {
  type: 'done'
  id: number
  exitCode?: number
  signal?: string
  summary: OutputSummary
}

export type SpawnerMessage = SpawnFailed | Spawned | Exited | Done
