/**
 * The layer rule (docs/architecture.md): which folder of src/ may import which. Imports are read
 * with TypeScript's own scanner: static, type-only, `export ... from`, `import()` and `typeof import()`.
 */
import { readdir, readFile } from 'node:fs/promises'
import { join, posix, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/**
 * Folder of src/ → the folders it may import from. Every folder may import the shared files at the
 * top of src/ (`''`), which import no folder. Nothing under src/ imports anything outside it (test/).
 */
const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  '': [],
  api: [''],
  storage: [''],
  crdt: ['', 'storage'],
  exec: [''],
  jobs: [''],
  sched: ['', 'crdt', 'exec', 'jobs', 'storage'],
  net: ['', 'crdt'],
  node: ['', 'api', 'crdt', 'exec', 'jobs', 'net', 'sched', 'storage'],
  tui: ['', 'api'],
  cli: ['', 'api', 'jobs', 'node', 'tui']
}

/** `src/sched/x.ts` → `sched`; `src/clock.ts` → `''`; outside src/ → undefined. */
function folderOf (path: string): string | undefined {
  const parts = path.split('/')
  if (parts[0] !== 'src') return undefined
  return parts.length > 2 ? parts[1] : ''
}

const describeFolder = (folder: string): string => folder === '' ? 'the files at the top of src/' : `src/${folder}/`

/** The layer rule's complaints about one file (`path` relative to the repository, with `/`). */
function layerViolations (path: string, source: string): string[] {
  const from = folderOf(path)
  if (from === undefined) return []
  const allowed = MAY_IMPORT[from]
  if (allowed === undefined) return [`${path}: ${describeFolder(from)} is not in the layer table of test/layers.test.ts`]
  const lineOf = (pos: number): number => source.slice(0, pos).split('\n').length
  return ts.preProcessFile(source, true, true).importedFiles
    .filter(({ fileName }) => fileName.startsWith('.'))
    .flatMap(({ fileName, pos }) => {
      const to = folderOf(posix.normalize(posix.join(posix.dirname(path), fileName)))
      const where = `${path}:${lineOf(pos)} imports '${fileName}'`
      if (to === undefined) return [`${where}: nothing under src/ imports from outside src/`]
      if (to === from || allowed.includes(to)) return []
      return [`${where}: ${describeFolder(from)} may not import ${describeFolder(to)}`]
    })
}

async function sourceFiles (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries
    .filter(e => e.isFile() && /\.tsx?$/.test(e.name))
    .map(e => relative(ROOT, join(e.parentPath, e.name)).split('\\').join('/'))
    .sort()
}

describe('the layer rule', () => {
  it('holds for every file under src/', async () => {
    const files = await sourceFiles(join(ROOT, 'src'))
    expect(files.length).toBeGreaterThan(50)
    expect(new Set(files.map(folderOf))).toEqual(new Set(Object.keys(MAY_IMPORT)))
    const violations = (await Promise.all(files.map(async file =>
      layerViolations(file, await readFile(join(ROOT, file), 'utf8'))))).flat()
    expect(violations).toEqual([])
  })

  it('catches every kind of import, and only real ones', () => {
    const source = [
      "// import { x } from '../cli/comment.js'",
      "import type { A } from '../cli/lazy.js'",
      'import {',
      '  b',
      "} from '../tui/format.js'",
      "export { c } from '../../test/helpers.js'",
      "const d = await import('../cli/context.js')",
      "type E = typeof import('../node/run.js')",
      "const s = \"import f from '../cli/string.js'\"",
      "import { g } from './claims.js'",
      "import { h } from '../crdt/ledger.js'",
      "import { i } from '../clock.js'",
      "import { j } from 'typescript'"
    ].join('\n')
    expect(layerViolations('src/sched/x.ts', source)).toEqual([
      "src/sched/x.ts:2 imports '../cli/lazy.js': src/sched/ may not import src/cli/",
      "src/sched/x.ts:5 imports '../tui/format.js': src/sched/ may not import src/tui/",
      "src/sched/x.ts:6 imports '../../test/helpers.js': nothing under src/ imports from outside src/",
      "src/sched/x.ts:7 imports '../cli/context.js': src/sched/ may not import src/cli/",
      "src/sched/x.ts:8 imports '../node/run.js': src/sched/ may not import src/node/"
    ])
    expect(layerViolations('src/clock.ts', "import { Ledger } from './crdt/ledger.js'")).toEqual([
      "src/clock.ts:1 imports './crdt/ledger.js': the files at the top of src/ may not import src/crdt/"
    ])
    expect(layerViolations('src/cli/lazy.ts', "import type { RunTop } from '../tui/main.js'")).toEqual([])
    expect(layerViolations('src/plugins/x.ts', '')).toEqual(['src/plugins/x.ts: src/plugins/ is not in the layer table of test/layers.test.ts'])
  })
})
