/** Builds dist/ once before the tests: process tests run the compiled CLI (`node dist/cli/main.js`). */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

export default async function setup (): Promise<void> {
  const root = fileURLToPath(new URL('..', import.meta.url))
  const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url))
  try {
    await promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, maxBuffer: 64 * 1024 * 1024 })
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string, stderr?: string }
    throw new Error(`the build (tsc -p tsconfig.build.json) failed:\n${stdout ?? ''}${stderr ?? ''}`)
  }
}
