/**
 * The LevelDB store on a disk that fills up: a small tmpfs, so it needs root (as CI runs); skipped
 * with the reason otherwise.
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, truncate } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openLevelStore } from '../src/storage/level-store.js'
import type { KVStore } from '../src/storage/store.js'
import { StorageError } from '../src/errors.js'

function tmpfsUnsupported (): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs'
  try {
    execFileSync('mount', ['--version'], { stdio: 'ignore' })
  } catch {
    return 'no mount command'
  }
  return undefined
}

const unsupported = tmpfsUnsupported()
if (unsupported != null) console.warn(`full-disk store test skipped: ${unsupported}`)

const mounts: string[] = []
afterEach(async () => {
  for (const dir of mounts.splice(0)) {
    execFileSync('umount', ['-l', dir])
    await rm(dir, { recursive: true, force: true })
  }
})

/** A directory on its own tmpfs of `size` (e.g. '24m'). */
async function smallDisk (size: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'meshq-fulldisk-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir])
  mounts.push(dir)
  return dir
}

const value = (n: number): Uint8Array => new Uint8Array(n).map((_, i) => (i * 7919) & 255)
const put = async (store: KVStore, key: string, bytes: number): Promise<void> => {
  await store.batch([{ key, value: value(bytes) }], { sync: true })
}

describe.skipIf(unsupported != null)('the ledger store on a full disk', () => {
  it('refuses writes while the disk is full, and loses no write acknowledged after space came back', async () => {
    const disk = await smallDisk('24m')
    const location = join(disk, 'ledger')
    let store = await openLevelStore(location)
    for (let i = 0; i < 10; i++) await put(store, `before${i}`, 1000)
    const filler = join(disk, 'filler')
    try { execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' }) } catch { /* ends with ENOSPC */ }
    await expect(put(store, 'refused', 200_000)).rejects.toBeInstanceOf(StorageError)
    await expect(put(store, 'refused-too', 1000)).rejects.toThrow(/space/)
    await truncate(filler, 0)
    const acknowledged: string[] = []
    for (let i = 0; i < 20; i++) {
      await put(store, `after${i}`, 500)
      acknowledged.push(`after${i}`)
    }
    await store.close()

    // what LevelDB replays from its log on the next open is what a crash would leave
    store = await openLevelStore(location)
    const found = await store.getMany([...acknowledged, ...Array.from({ length: 10 }, (_, i) => `before${i}`)])
    expect(found.filter(v => v === undefined)).toHaveLength(0)
    expect(await store.get('refused')).toBeUndefined()
    await store.close()
  })
})
