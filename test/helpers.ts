import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Polls `condition` until it returns a truthy value or the deadline passes. */
export async function waitFor<T> (condition: () => T | Promise<T>, options: { timeout?: number, interval?: number, what?: string } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeout ?? 20_000)
  let last: unknown
  for (;;) {
    try {
      const value = await condition()
      if (value) return value as NonNullable<T>
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${options.what ?? 'condition'}${last != null ? `: ${(last as Error).message}` : ''}`)
    }
    await new Promise(resolve => setTimeout(resolve, options.interval ?? 50))
  }
}

/** A temp directory removed by the returned cleanup. */
export async function tempDir (prefix = 'meshq-test-'): Promise<{ dir: string, cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  return { dir, cleanup: async () => { await rm(dir, { recursive: true, force: true }) } }
}
