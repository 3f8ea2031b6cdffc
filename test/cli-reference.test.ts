/**
 * The CLI's description of itself: `meshq version`, the completion scripts (run in a real bash), and
 * docs/cli.md, which must be what scripts/cli-doc.js generates from the current `--help` texts.
 */
import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { COMMANDS } from '../src/cli/commands/index.js'
import { parserFlags } from '../src/cli/commands/meta.js'
import { PROTOCOL_VERSION, VERSION } from '../src/version.js'
import { meshq, ok } from './cluster.js'
import { tempDir } from './helpers.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const run = promisify(execFile)

/** Whether `program` is on the PATH (zsh and fish are checked only where installed). */
async function installed (program: string): Promise<boolean> {
  return await run('sh', ['-c', `command -v ${program}`]).then(() => true, () => false)
}

let home: { dir: string, cleanup: () => Promise<void> }
beforeAll(async () => { home = await tempDir() })
afterAll(async () => { await home.cleanup() })

describe('meshq version', () => {
  it('prints the version of package.json, with --version too; --json adds the Node.js and protocol versions', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }
    expect(VERSION).toBe(pkg.version)
    const [flag, short, command, json, flagJson] = await Promise.all([
      ok(home.dir, ['--version']), ok(home.dir, ['-V']), ok(home.dir, ['version']),
      ok(home.dir, ['version', '--json']), ok(home.dir, ['--version', '--json'])
    ])
    expect([flag, short, command]).toEqual([`${VERSION}\n`, `${VERSION}\n`, `${VERSION}\n`])
    expect(JSON.parse(json)).toEqual({ version: VERSION, node: process.versions.node, protocol: PROTOCOL_VERSION })
    expect(JSON.parse(flagJson)).toEqual(JSON.parse(json))
  })

  it('refuses arguments with a usage error', async () => {
    expect(await meshq(home.dir, ['version', 'extra'])).toMatchObject({
      code: 2, stderr: "meshq: unexpected argument 'extra' (see 'meshq version --help')\n"
    })
  })
})

describe('meshq completion', () => {
  let bashScript: string
  beforeAll(async () => {
    const script = join(home.dir, 'meshq.bash')
    await writeFile(script, await ok(home.dir, ['completion', 'bash']))
    bashScript = script
  })

  /** What bash offers for `words`, the last one being the word under the cursor. */
  async function bashComplete (...words: string[]): Promise<string[]> {
    const program = [
      'source "$1"; shift',
      // the function `complete` registered for meshq, as bash would call it on TAB
      "fn=$(complete -p meshq | sed -E 's/.* -F ([^ ]+) .*/\\1/')",
      'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}',
      '"$fn" meshq "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
      'printf "%s\\n" "${COMPREPLY[@]}"'
    ].join('\n')
    const { stdout } = await run('bash', ['--norc', '--noprofile', '-c', program, 'bash', bashScript, ...words])
    return stdout.split('\n').filter(line => line !== '')
  }

  it('bash: completes command names and flags', async () => {
    const [s, gr, homeFirst, follow, shells, afterValue, commandLine] = await Promise.all([
      bashComplete('meshq', 's'),
      bashComplete('meshq', 'sub', '--gr'),
      bashComplete('meshq', '--home', '/tmp/h', 'st'),
      bashComplete('meshq', 'logs', '--f'),
      bashComplete('meshq', 'completion', ''),
      bashComplete('meshq', 'sub', '--group', ''),
      bashComplete('meshq', 'sub', '--', 'echo', '--gr')
    ])
    expect(s).toEqual(['sub', 'show', 'status', 'stats'])
    expect(gr).toEqual(['--group'])
    expect(homeFirst).toEqual(['status', 'stats'])
    expect(follow).toEqual(['--follow'])
    expect(shells).toEqual(['bash', 'zsh', 'fish'])
    // a flag's value and a job's command line are left to bash's default (file names)
    expect(afterValue).toEqual([])
    expect(commandLine).toEqual([])
  })

  it('bash: offers every command, and every flag each command parses', async () => {
    const names = [...COMMANDS.keys()]
    expect(await bashComplete('meshq', '')).toEqual([...names, 'help'])
    expect(await bashComplete('meshq', 'help', '')).toEqual(names)
    const offered = await Promise.all(names.map(async name => await bashComplete('meshq', name, '--')))
    names.forEach((name, i) => {
      expect(offered[i], name).toEqual(parserFlags(COMMANDS.get(name)!).map(f => `--${f.name}`))
    })
  })

  it('zsh and fish: list every command and flag, and parse where the shell is installed', async () => {
    for (const shell of ['zsh', 'fish']) {
      const script = await ok(home.dir, ['completion', shell])
      for (const command of COMMANDS.values()) {
        expect(script, `${shell}: ${command.name}`).toContain(shell === 'zsh' ? `'${command.name}:` : `-a ${command.name} `)
        for (const flag of command.flags) {
          expect(script, `${shell}: ${command.name} --${flag.name}`).toContain(shell === 'zsh' ? `--${flag.name}` : `-l ${flag.name}`)
        }
      }
      if (await installed(shell)) {
        const file = join(home.dir, `meshq.${shell}`)
        await writeFile(file, script)
        await run(shell, ['-n', file])
      }
    }
  })

  it('refuses a missing or unknown shell with a usage error', async () => {
    const expected = "meshq: give one shell: bash, zsh, fish (see 'meshq completion --help')\n"
    expect(await meshq(home.dir, ['completion'])).toMatchObject({ code: 2, stderr: expected })
    expect(await meshq(home.dir, ['completion', 'tcsh'])).toMatchObject({ code: 2, stderr: expected })
  })
})

describe('docs/cli.md', () => {
  it('is what npm run docs:cli generates from the current --help texts', async () => {
    const [{ stdout: generated }, committed] = await Promise.all([
      run(process.execPath, [join(ROOT, 'scripts', 'cli-doc.js'), '--stdout'], { maxBuffer: 16 * 1024 * 1024 }),
      readFile(join(ROOT, 'docs', 'cli.md'), 'utf8')
    ])
    for (const name of COMMANDS.keys()) expect(generated).toContain(`## meshq ${name}\n`)
    expect(committed, 'docs/cli.md is out of date: run `npm run docs:cli` and commit docs/cli.md').toBe(generated)
  })
})
