/**
 * The spawner process on its own, driven as the node drives it: one JSON order per job over the IPC
 * channel of `fork`, answers `spawned`, `exited`, `done` or `failed`.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, test } from 'vitest'
import type { SpawnerMessage, SpawnOrder } from '../src/exec/spawner/protocol.js'
import { tempDir, waitFor } from './helpers.js'

const ENTRY = fileURLToPath(new URL('../dist/exec/spawner/main.js', import.meta.url))

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const cleanup of cleanups.splice(0)) await cleanup() })

/** A spawner and the messages it sent so far. */
async function startSpawner (): Promise<{ spawner: ChildProcess, messages: SpawnerMessage[], dir: string }> {
  const { dir, cleanup } = await tempDir('meshq-spawner-')
  const spawner = fork(ENTRY, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const messages: SpawnerMessage[] = []
  spawner.on('message', message => { messages.push(message as SpawnerMessage) })
  cleanups.push(async () => {
    spawner.kill('SIGKILL')
    await cleanup()
  })
  return { spawner, messages, dir }
}

function order (id: number, cmd: string[], dir: string): SpawnOrder {
  const paths = { stdout: join(dir, `${id}.stdout`), stderr: join(dir, `${id}.stderr`) }
  return { id, cmd, cwd: dir, env: { GREETING: 'hello' }, outputs: { paths, capBytes: 1 << 20 }, drainMs: 1000 }
}

async function answer<T extends SpawnerMessage['type']> (messages: SpawnerMessage[], id: number, type: T): Promise<Extract<SpawnerMessage, { type: T }>> {
  return await waitFor(
    () => messages.find((m): m is Extract<SpawnerMessage, { type: T }> => m.id === id && m.type === type),
    { timeout: 10_000, what: `${type} for order ${id}` }
  )
}

/** Whether any live (non-zombie) process is in group `pgid`. */
function groupAlive (pgid: number): boolean {
  return readdirSync('/proc').filter(name => /^\d+$/.test(name)).some(pid => {
    try {
      const [state, , pgrp] = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ')
      return Number(pgrp) === pgid && state !== 'Z'
    } catch {
      return false
    }
  })
}

describe('the spawner', () => {
  test('starts a job with its environment, captures its output and says how it ended', async () => {
    const { spawner, messages, dir } = await startSpawner()
    spawner.send(order(1, ['sh', '-c', 'echo "$GREETING"; echo oops >&2; exit 3'], dir))
    const spawned = await answer(messages, 1, 'spawned')
    expect(spawned.pid).toBeGreaterThan(1)
    await answer(messages, 1, 'exited')
    const done = await answer(messages, 1, 'done')
    expect(done).toMatchObject({ exitCode: 3, summary: { stdoutBytes: 6, stderrBytes: 5, truncated: false } })
    expect(await readFile(join(dir, '1.stdout'), 'utf8')).toBe('hello\n')
    expect(messages.filter(m => m.id === 1).map(m => m.type)).toEqual(['spawned', 'exited', 'done'])
  })

  test('says why a job could not start', async () => {
    const { spawner, messages, dir } = await startSpawner()
    spawner.send(order(2, ['/no/such/program'], dir))
    expect(await answer(messages, 2, 'failed')).toMatchObject({ stage: 'spawn', code: 'ENOENT' })
    // the output directory's parent is a file
    await writeFile(join(dir, 'file'), '')
    const paths = { stdout: join(dir, 'file', 'out', '3.stdout'), stderr: join(dir, 'file', 'out', '3.stderr') }
    spawner.send({ ...order(3, ['true'], dir), outputs: { paths, capBytes: 1024 } })
    expect(await answer(messages, 3, 'failed')).toMatchObject({ stage: 'outputs', code: 'ENOTDIR' })
  })

  test('when its node goes (the channel closes), kills the jobs it runs and exits', async () => {
    const { spawner, messages, dir } = await startSpawner()
    spawner.send(order(4, ['sh', '-c', 'sleep 300 & sleep 300'], dir))
    const { pid } = await answer(messages, 4, 'spawned')
    await waitFor(() => groupAlive(pid), { timeout: 5000, what: 'the job to run' })
    const exited = new Promise(resolve => spawner.once('exit', resolve))
    spawner.disconnect()
    await exited
    await waitFor(() => !groupAlive(pid), { timeout: 5000, interval: 20, what: 'the job\'s group to die with its spawner' })
  })
})
