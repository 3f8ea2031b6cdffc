import { readdir, readFile } from 'node:fs/promises'

/** The names in `dir`, sorted; none when it does not exist. */
export async function listDir (dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

/** The file's contents; undefined when it is gone (a node running in `dir` may delete it meanwhile). */
export async function readIfExists (path: string): Promise<Uint8Array | undefined> {
  try {
    return await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}
