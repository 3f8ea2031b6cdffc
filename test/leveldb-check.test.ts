import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { cp, open, readdir, rm, stat, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { findCorruption } from '../src/storage/leveldb-check/check.js'
import { openLevelStore } from '../src/storage/level-store.js'
import { StoreCorruptError } from '../src/errors.js'
import { tempDir } from './helpers.js'

const TAIL_BATCHES = 100
const LAST_KEY = 'tail/last'

let pristine: string
const cleanups: Array<() => Promise<void>> = []

async function freshDir (): Promise<string> {
  const { dir, cleanup } = await tempDir('meshq-leveldb-check-')
  cleanups.push(cleanup)
  return dir
}

/**
 * ~20 MB in batches of compressible small values and random (incompressible) large ones, with a
 * small write buffer so that most of it ends up in .ldb tables; then, reopened with the default
 * buffer, a tail of batches that stays in the .log, the last one holding a 20 KiB value.
 */
async function writeStore (dir: string): Promise<void> {
  let db = new Level<string, Uint8Array>(dir, { valueEncoding: 'view', writeBufferSize: 64 * 1024 })
  for (let i = 0; i < 400; i++) {
    const small = Array.from({ length: 8 }, (_, j) => ({
      type: 'put' as const, key: `fact/${i}/${j}`, value: new TextEncoder().encode(JSON.stringify({ batch: i, entry: j, state: 'queued' }))
    }))
    await db.batch([...small, { type: 'put', key: `blob/${i}`, value: randomBytes(48 * 1024) }])
  }
  await db.close()
  db = new Level<string, Uint8Array>(dir, { valueEncoding: 'view' })
  for (let i = 0; i < TAIL_BATCHES; i++) await db.put(`tail/${i}`, randomBytes(1024))
  await db.put(LAST_KEY, randomBytes(20 * 1024))
  await db.close()
}

/** A fresh copy of the pristine store. */
async function copyStore (): Promise<string> {
  const dir = await freshDir()
  await cp(pristine, dir, { recursive: true })
  return dir
}

/** The largest file of `dir` whose name matches `pattern`; fails when there is none. */
async function largest (dir: string, pattern: RegExp): Promise<{ path: string, size: number }> {
  const files = await Promise.all((await readdir(dir)).filter(n => pattern.test(n))
    .map(async n => ({ path: join(dir, n), size: (await stat(join(dir, n))).size })))
  expect(files.length).toBeGreaterThan(0)
  return files.reduce((a, b) => b.size > a.size ? b : a)
}

async function overwrite (path: string, at: number, length: number, byte: number): Promise<void> {
  const file = await open(path, 'r+')
  await file.write(Buffer.alloc(length, byte), 0, length, at)
  await file.close()
}

async function expectOpens (dir: string): Promise<void> {
  const store = await openLevelStore(dir)
  expect(await store.get(`tail/${TAIL_BATCHES - 1}`)).toBeDefined()
  await store.close()
}

beforeAll(async () => {
  pristine = await freshDir()
  await writeStore(pristine)
})
afterAll(async () => { for (const cleanup of cleanups) await cleanup() })

describe('findCorruption', () => {
  it('finds nothing wrong in a sound store, nor in a missing directory', async () => {
    const dir = await copyStore()
    expect((await largest(dir, /\.ldb$/)).size).toBeGreaterThan(1024 * 1024)
    expect((await largest(dir, /\.log$/)).size).toBeGreaterThan(100 * 1024)
    expect(await findCorruption(dir)).toBeUndefined()
    expect(await findCorruption(join(dir, 'missing'))).toBeUndefined()
    await expectOpens(dir)
  })

  it('reports a damaged record in the middle of the log, and the store refuses to open', async () => {
    const dir = await copyStore()
    const log = await largest(dir, /\.log$/)
    await overwrite(log.path, Math.floor(log.size / 2), 4096, 0x5a)
    expect(await findCorruption(dir)).toMatch(/^\d+\.log: bad record \w+ at offset \d+$/)
    const err = await openLevelStore(dir).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StoreCorruptError)
    expect((err as Error).message).toMatch(/is corrupt \(\d+\.log: bad record/)
  })

  it('reports a damaged block in the middle of a table, and the store refuses to open', async () => {
    const dir = await copyStore()
    const table = await largest(dir, /\.ldb$/)
    await overwrite(table.path, Math.floor(table.size / 2), 4096, 0x5a)
    expect(await findCorruption(dir)).toMatch(/^\d+\.ldb: bad data block checksum at offset \d+$/)
    await expect(openLevelStore(dir)).rejects.toBeInstanceOf(StoreCorruptError)
  })

  it('accepts a log cut short in its last record (a torn tail), and the store opens without it', async () => {
    const dir = await copyStore()
    const log = await largest(dir, /\.log$/)
    await truncate(log.path, log.size - 8000)
    expect(await findCorruption(dir)).toBeUndefined()
    const store = await openLevelStore(dir)
    expect(await store.get(`tail/${TAIL_BATCHES - 1}`)).toBeDefined()
    expect(await store.get(LAST_KEY)).toBeUndefined()
    await store.close()
  })

  it('accepts a garbled last record of the log, as no sound record follows it', async () => {
    const dir = await copyStore()
    const log = await largest(dir, /\.log$/)
    await overwrite(log.path, log.size - 6000, 6000, 0x5a)
    expect(await findCorruption(dir)).toBeUndefined()
    await expectOpens(dir)
  })

  it('ignores a table that the MANIFEST does not list (a compaction cut short), which LevelDB deletes', async () => {
    const dir = await copyStore()
    const table = await largest(dir, /\.ldb$/)
    const orphan = join(dir, '999999.ldb')
    await cp(table.path, orphan)
    await truncate(orphan, Math.floor(table.size / 2))
    expect(await findCorruption(dir)).toBeUndefined()
    await expectOpens(dir)
    await expect(stat(orphan)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('reports a store whose CURRENT is missing (LevelDB would start an empty one over it)', async () => {
    const dir = await copyStore()
    await rm(join(dir, 'CURRENT'))
    expect(await findCorruption(dir)).toBe('CURRENT is missing')
  })
})
