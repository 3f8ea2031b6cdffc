/**
 * The node's end of its spawner process (`main.ts`): forks it, sends it spawn orders and routes its
 * answers. If the spawner dies, every job it had started counts as ended by SIGKILL (the node kills
 * their groups) and the next order starts a new spawner.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { log } from '../log.js'
import type { ProcStat } from '../proc.js'
import type { Done, Spawned, SpawnerMessage, SpawnFailed, SpawnOrder } from './protocol.js'

/** A job the spawner started. */
export interface SpawnedJob {
  type: 'spawned'
  pid: number
  /** When the spawner spawned it: its end (`exited`) is measured there too, so never earlier. */
  startedAt: number
  stat?: ProcStat
  contained: boolean
  /** Resolves with the time its leader exited. */
  exited: Promise<number>
  /** Resolves once its output is closed; `spawnerDied` when the spawner went first. */
  done: Promise<Omit<Done, 'type' | 'id'> & { spawnerDied?: true }>
}

interface Pending {
  /** The spawner the order went to: a new one may start before an old one's death is known. */
  spawner: ChildProcess
  started: (outcome: Spawned | SpawnFailed) => void
  exited: (endedAt: number) => void
  done: (done: Omit<Done, 'type' | 'id'> & { spawnerDied?: true }) => void
}

/**
 * The spawner's entry in `dist/`. Under the test runner this module is loaded from `src/`, where the
 * entry is TypeScript that plain Node cannot load with its `.js` imports; the tests build `dist/` first.
 */
function entryPath (): string {
  const compiled = fileURLToPath(new URL('main.js', import.meta.url))
  if (existsSync(compiled)) return compiled
  return compiled.replace(/\/src\/exec\/spawner\/main\.js$/, '/dist/exec/spawner/main.js')
}

/**
 * The spawner stays small, which is the point of it: fork copies the page tables of the forking
 * process's private memory, so each spawn costs more the more of it there is. A small young
 * generation collects garbage before the heap grows; no V8 helper threads (`--single-threaded`)
 * means no stacks and malloc arenas of theirs (3 paired runs of 1,000 `true` jobs: spawner CPU per
 * job 4.3–4.9 → 3.7–4.2 ms, 153–175 → 184–190 jobs/s). `--jitless` shrank it further but made its
 * own work slower than it saved.
 */
const SPAWNER_FLAGS = ['--max-semi-space-size=1', '--single-threaded']

const NO_OUTPUT = { stdoutBytes: 0, stderrBytes: 0, truncated: false, tail: '' }

export class Spawner {
  #child?: ChildProcess
  #nextId = 0
  readonly #orders = new Map<number, Pending>()

  /** Starts the spawner now rather than with the first job, which then need not wait for it. */
  start (): void {
    this.#running()
  }

  /** Sends the order; resolves once the job runs or could not start. Rejects if the spawner cannot be reached. */
  async spawn (order: Omit<SpawnOrder, 'id'>): Promise<SpawnedJob | SpawnFailed> {
    const child = this.#running()
    const id = ++this.#nextId
    return await new Promise((resolve, reject) => {
      let exited!: (endedAt: number) => void
      let done!: Pending['done']
      const exitedP = new Promise<number>(resolve => { exited = resolve })
      const doneP = new Promise<Parameters<Pending['done']>[0]>(resolve => { done = resolve })
      const started = (outcome: Spawned | SpawnFailed): void => {
        if (outcome.type === 'failed') return resolve(outcome)
        const { pid, startedAt, stat, contained } = outcome
        resolve({ type: 'spawned', pid, startedAt, stat, contained, exited: exitedP, done: doneP })
      }
      this.#orders.set(id, { spawner: child, started, exited, done })
      child.send({ ...order, id }, err => {
        if (err == null) return
        this.#orders.delete(id)
        reject(err)
      })
    })
  }

  /** Lets the spawner go once its jobs are done (the node has waited for them). */
  async stop (): Promise<void> {
    const child = this.#child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise(resolve => child.once('exit', resolve))
    child.disconnect()
    await gone
  }

  #running (): ChildProcess {
    if (this.#child !== undefined && this.#child.connected) return this.#child
    const child = fork(entryPath(), [], { execArgv: SPAWNER_FLAGS, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' })
    child.on('message', (message: SpawnerMessage) => { this.#receive(message) })
    child.once('exit', (code, signal) => { this.#died(child, code, signal) })
    child.on('error', err => { log('spawner: %s', err.message) })
    this.#child = child
    return child
  }

  #receive (message: SpawnerMessage): void {
    const pending = this.#orders.get(message.id)
    if (pending === undefined) return
    switch (message.type) {
      case 'failed':
        this.#orders.delete(message.id)
        pending.started(message)
        break
      case 'spawned':
        pending.started(message)
        break
      case 'exited':
        pending.exited(message.endedAt)
        break
      case 'done':
        this.#orders.delete(message.id)
        pending.done({ exitCode: message.exitCode, signal: message.signal, summary: message.summary })
        break
    }
  }

  #died (child: ChildProcess, code: number | null, signal: string | null): void {
    if (this.#child === child) this.#child = undefined
    const orphans = [...this.#orders].filter(([, pending]) => pending.spawner === child)
    if (orphans.length > 0) log('spawner died (exit %s, signal %s) with %d jobs', code, signal, orphans.length)
    const endedAt = Date.now()
    for (const [id, pending] of orphans) {
      this.#orders.delete(id)
      pending.started({ type: 'failed', id, stage: 'spawner', message: 'the spawner process died' })
      pending.exited(endedAt)
      pending.done({ signal: 'SIGKILL', summary: NO_OUTPUT, spawnerDied: true })
    }
  }
}
