import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { builtinModules } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { PassThrough } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { parseArgs } from '../src/cli/args.js'
import { run } from '../src/cli/cli.js'
import { COMMANDS } from '../src/cli/commands/index.js'
import { loadCommand } from '../src/cli/commands/registry.js'
import { joinToken } from '../src/cli/commands/node.js'
import { sub } from '../src/cli/commands/sub.js'
import type { Io } from '../src/cli/context.js'
import { submitOptionsFromArgs } from '../src/cli/submit-options.js'
import { MAX_BATCH_LINE_BYTES, parseBatch } from '../src/jobs/batch.js'
import { buildRequest } from '../src/jobs/submit-options.js'
import { tempDir } from './helpers.js'

const client = { cwd: '/work/here', env: { FROM_ENV: 'copied' }, now: Date.parse('2026-12-07T10:00:00Z') }

function parseSub (argv: string[]): { cmd: string[], request: ReturnType<typeof buildRequest> } {
  const args = parseArgs('sub', argv, sub.flags, { restAfterFirstPositional: true })
  return { cmd: args.positionals, request: buildRequest(args.positionals, submitOptionsFromArgs(args, client), client) }
}

describe('argument parser', () => {
  const specs = [
    { name: 'group', arg: 'G', help: '' },
    { name: 'tag', arg: 'T', repeat: true, help: '' },
    { name: 'follow', short: 'f', help: '' }
  ]

  it('rejects an unknown flag with a UsageError naming it and the command', () => {
    expect(() => parseArgs('ls', ['--bogus'], specs)).toThrow(expect.objectContaining({
      name: 'UsageError', message: expect.stringContaining("unknown flag --bogus for 'meshq ls'")
    }))
    expect(() => parseArgs('ls', ['-x'], specs)).toThrow(/unknown flag -x/)
  })

  it('rejects a missing value and a value on a switch', () => {
    expect(() => parseArgs('ls', ['--group'], specs)).toThrow(/--group needs a value/)
    expect(() => parseArgs('ls', ['--follow=yes'], specs)).toThrow(/takes no value/)
  })

  it('reads --flag value, --flag=value, short switches, repeats and --', () => {
    const args = parseArgs('x', ['a', '--group', 'g1', '--tag=t1', '-f', '--tag', 't2', '--group=g2', '--', '--tag', 'b'], specs)
    expect(args.string('group')).toBe('g2')
    expect(args.list('tag')).toEqual(['t1', 't2'])
    expect(args.bool('follow')).toBe(true)
    expect(args.positionals).toEqual(['a', '--tag', 'b'])
  })

  it('takes a value that starts with a dash', () => {
    expect(parseSub(['--pri', '-5', 'true']).request.pri).toBe(-5)
  })
})

describe('sub options', () => {
  it('takes the command after --', () => {
    const { request } = parseSub(['--name', 'n', '--', 'ls', '-l', '--name'])
    expect(request).toEqual({ name: 'n', cmd: ['ls', '-l', '--name'], cwd: '/work/here' })
  })

  it('takes the command from the first non-flag without --', () => {
    const { request } = parseSub(['--group', 'g', 'grep', '-r', '--group', 'x', '--', 'y'])
    expect(request.group).toBe('g')
    expect(request.cmd).toEqual(['grep', '-r', '--group', 'x', '--', 'y'])
  })

  it('needs a command', () => {
    expect(() => parseSub(['--name', 'n'])).toThrow(expect.objectContaining({ name: 'UsageError', message: expect.stringMatching(/missing command/) }))
  })

  it('collects repeatable flags and splits lists', () => {
    const { request } = parseSub(['--after', 'a,b', '--after', 'c', '--tag', 'gpu', '--tag', 'big', '--after-group', 'g',
      '--env', 'A=1', '--env', 'B=x=y', '--env', 'FROM_ENV', 'true'])
    expect(request.after).toEqual(['a', 'b', 'c'])
    expect(request.tag).toEqual(['gpu', 'big'])
    expect(request.afterGroup).toEqual(['g'])
    expect(request.env).toEqual({ A: '1', B: 'x=y', FROM_ENV: 'copied' })
  })

  it('checks numbers and durations and resolves the cwd', () => {
    const { request } = parseSub(['--ttr', '5m', '--timeout', '1.5s', '--delay', '250ms', '--retries', '3', '--cores', '2',
      '--cwd', '../there', '--allow-missing', '--id', 'k1', 'true'])
    expect(request).toMatchObject({ ttr: 300_000, timeout: 1500, delay: 250, retries: 3, cores: 2, cwd: '/work/there', allowMissing: true, id: 'k1' })
    expect(() => parseSub(['--ttr', '5x', 'true'])).toThrow(expect.objectContaining({ name: 'UsageError', message: expect.stringMatching(/bad --ttr: '5x'/) }))
    expect(() => parseSub(['--retries', '-1', 'true'])).toThrow(/bad --retries/)
    expect(() => parseSub(['--cores', '0', 'true'])).toThrow(/bad --cores/)
    expect(() => parseSub(['--pri', '1.5', 'true'])).toThrow(/bad --pri/)
    expect(() => parseSub(['--env', 'NOT_SET_ANYWHERE', 'true'])).toThrow(/NOT_SET_ANYWHERE is not set/)
  })
})

describe('batch reader', () => {
  it('reads JSON lines with defaults from the flags, fields replacing them', () => {
    const input = [
      '{"cmd": ["echo", "1"]}',
      '',
      '{"cmd": ["echo", "2"], "group": "own", "after-group": "g0", "ttr": "1m", "cwd": "sub", "env": {"K": "V"}}'
    ].join('\n')
    const jobs = parseBatch(input, { group: 'default', pri: 3 }, client)
    expect(jobs).toEqual([
      { cmd: ['echo', '1'], group: 'default', pri: 3, cwd: '/work/here' },
      { cmd: ['echo', '2'], group: 'own', pri: 3, afterGroup: ['g0'], ttr: 60_000, cwd: '/work/here/sub', env: { K: 'V' } }
    ])
  })

  it('reads one JSON array', () => {
    const jobs = parseBatch('[{"cmd": ["a"]}, {"cmd": ["b"], "afterGroup": ["x"]}]', {}, client)
    expect(jobs.map(j => j.cmd)).toEqual([['a'], ['b']])
    expect(() => parseBatch('[{"cmd": ["a"]}, {"cmd": "b"}]', {}, client)).toThrow(/^item 2: cmd must be an array/)
  })

  it('names the line of an error', () => {
    const ok = '{"cmd": ["true"]}'
    expect(() => parseBatch(`${ok}\n{"cmd": [`, {}, client)).toThrow(expect.objectContaining({ name: 'UsageError', message: expect.stringMatching(/^line 2: /) }))
    expect(() => parseBatch(`${ok}\n${ok}\n{"cmd": "echo hi"}`, {}, client)).toThrow(/^line 3: cmd must be an array of strings/)
    expect(() => parseBatch(`{"cmd": ["x"], "tags": ["a"]}`, {}, client)).toThrow(/^line 1: unknown field 'tags'/)
    expect(() => parseBatch(`${ok}\n{"cmd": ["x"], "ttr": "soon"}`, {}, client)).toThrow(/^line 2: bad ttr/)
    expect(() => parseBatch(`${ok}\n[1]`, {}, client)).toThrow(/^line 2: expected a JSON object/)
    expect(() => parseBatch('\n\n', {}, client)).toThrow(/no jobs/)
  })

  it('rejects a line over 1 MiB', () => {
    const long = JSON.stringify({ cmd: ['echo', 'x'.repeat(MAX_BATCH_LINE_BYTES)] })
    expect(() => parseBatch(`{"cmd": ["a"]}\n${long}`, {}, client)).toThrow(/^line 2: longer than 1 MiB/)
  })
})

describe('node --join', () => {
  const io = (stdin = '', env: Record<string, string> = {}, cwd = '/'): Parameters<typeof joinToken>[1] => {
    const input = new PassThrough()
    input.end(stdin)
    return { stdin: input, env, cwd }
  }

  it('takes the token as given, from @FILE (trimmed, relative to the cwd), from a line of stdin, else from MESHQ_JOIN_TOKEN', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      await writeFile(join(dir, 'token'), '  mq1.file\n')
      expect(await joinToken('mq1.arg', io())).toBe('mq1.arg')
      expect(await joinToken('@token', io('', {}, dir))).toBe('mq1.file')
      expect(await joinToken(`@${join(dir, 'token')}`, io())).toBe('mq1.file')
      expect(await joinToken('-', io('mq1.stdin \nnot this\n'))).toBe('mq1.stdin')
      expect(await joinToken(undefined, io('', { MESHQ_JOIN_TOKEN: 'mq1.env\n' }))).toBe('mq1.env')
      expect(await joinToken('mq1.arg', io('', { MESHQ_JOIN_TOKEN: 'mq1.env' }))).toBe('mq1.arg')
      expect(await joinToken(undefined, io('', { MESHQ_JOIN_TOKEN: '' }))).toBeUndefined()
    } finally {
      await cleanup()
    }
  })

  it('refuses a missing or empty file and an empty stdin as usage errors, saying which', async () => {
    const { dir, cleanup } = await tempDir()
    try {
      await writeFile(join(dir, 'empty'), '\n')
      const usage = (message: RegExp): unknown => expect.objectContaining({ name: 'UsageError', message: expect.stringMatching(message) })
      await expect(joinToken('@/no/such/token', io())).rejects.toEqual(usage(/^--join @\/no\/such\/token: cannot read the token: ENOENT/))
      await expect(joinToken('@empty', io('', {}, dir))).rejects.toEqual(usage(/^--join @empty: .*empty is empty$/))
      await expect(joinToken('-', io(''))).rejects.toEqual(usage(/^--join -: no token on stdin$/))
    } finally {
      await cleanup()
    }
  })
})

describe('cli', () => {
  function io (): Io & { out: () => string, err: () => string } {
    const stdout = new PassThrough()
    const stderr = new PassThrough()
    let out = ''
    let err = ''
    stdout.on('data', c => { out += String(c) })
    stderr.on('data', c => { err += String(c) })
    return { stdin: new PassThrough(), stdout, stderr, env: {}, cwd: '/', out: () => out, err: () => err }
  }

  it('exits 2 on usage errors and 0 on help', async () => {
    const a = io()
    expect(await run(['frob'], a)).toBe(2)
    expect(a.err()).toBe("meshq: unknown command 'frob' (see 'meshq help')\n")
    const b = io()
    expect(await run(['ls', '--json', '--limit', 'x'], b)).toBe(2)
    expect(JSON.parse(b.err())).toEqual({ error: { name: 'UsageError', message: "bad --limit: 'x' (expected an integer)" } })
    const c = io()
    expect(await run(['help', 'wait'], c)).toBe(0)
    expect(c.out()).toMatch(/^Usage: meshq wait/)
  })

  it('exits 2 when the join token file cannot be read, before starting a node', async () => {
    const a = io()
    expect(await run(['node', '--join', '@/no/such/token'], a)).toBe(2)
    expect(a.err()).toMatch(/^meshq: --join @\/no\/such\/token: cannot read the token: ENOENT/)
  })

  it('lists every flag in every command help', async () => {
    for (const command of COMMANDS.values()) {
      const out = io()
      expect(await run([command.name, '--help'], out)).toBe(0)
      for (const flag of command.flags) expect(out.out()).toContain(`--${flag.name}`)
      expect(out.out()).toContain('--home DIR')
    }
  })

  it('loads no heavy module in client commands', async () => {
    // Walks the imports from the entry point: only node builtins and our own files. Type-only imports
    // are skipped: they are erased and load nothing (lazy.ts names the node's and the TUI's types).
    // Dynamic imports are followed too (the registry loads each command's module so), except in
    // lazy.ts, whose are the heavy parts only `meshq node` and `meshq top` load.
    const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src')
    const seen = new Set<string>()
    const bare = new Set<string>()
    const visit = async (file: string): Promise<void> => {
      if (seen.has(file)) return
      seen.add(file)
      const source = await readFile(file, 'utf8')
      const specs = [...source.matchAll(/^(?:import|export)\s(?!type\s)[^'"]*?from\s+'([^']+)'/gm)].map(m => m[1])
      if (!file.endsWith(join('cli', 'lazy.ts'))) specs.push(...[...source.matchAll(/\bimport\('([^']+)'\)/g)].map(m => m[1]))
      for (const spec of specs) {
        if (spec.startsWith('.')) await visit(join(dirname(file), spec.replace(/\.js$/, '.ts')))
        else bare.add(spec)
      }
    }
    await visit(join(root, 'cli', 'main.ts'))
    expect(seen.size).toBeGreaterThan(10)
    expect(seen).toContain(join(root, 'cli', 'commands', 'sub.ts'))
    expect([...bare].filter(spec => !spec.startsWith('node:') && !builtinModules.includes(spec))).toEqual([])
    expect([...seen].some(file => /[/](node|tui|crdt|exec|sched)[/]/.test(file))).toBe(false)
    // node:http alone costs about 0.1 s of CPU to load in Node 24 (see api/http-lite.ts)
    expect([...bare].filter(spec => /^(node:)?https?$/.test(spec))).toEqual([])
  })

  it('loads only the module of the command it runs', async () => {
    // bin/meshq.js with a hook that names every file it loads on stderr (dist/ is built by the global setup)
    const bin = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'meshq.js')
    const hook = 'data:text/javascript,import{registerHooks}from"node:module";registerHooks({load(u,c,n){process.stderr.write("loaded "+u+"\\n");return n(u,c)}})'
    const commandModules = async (args: string[]): Promise<string[]> => await new Promise(resolve => {
      const env = { ...process.env, MESHQ_HOME: '/nonexistent/meshq-home' }
      execFile(process.execPath, ['--import', hook, bin, ...args], { env }, (_err, _stdout, stderr) => {
        resolve([...stderr.matchAll(/^loaded .*\/dist\/cli\/commands\/(\S+)$/gm)].map(m => m[1]).sort())
      })
    })
    expect(await commandModules(['--version'])).toEqual(['meta.js', 'registry.js'])
    expect(await commandModules(['ls'])).toEqual(['jobs.js', 'meta.js', 'registry.js'])
    expect(await commandModules(['sub', '--', 'true'])).toEqual(['meta.js', 'registry.js', 'sub.js'])
  })

  it('names every command after its key in the registry, and knows no other name', async () => {
    for (const name of COMMANDS.keys()) expect((await loadCommand(name))?.name).toBe(name)
    for (const name of ['constructor', '__proto__', 'toString', 'help', '']) expect(await loadCommand(name)).toBeUndefined()
    const a = io()
    expect(await run(['constructor'], a)).toBe(2)
    expect(a.err()).toBe("meshq: unknown command 'constructor' (see 'meshq help')\n")
  })

  it('refuses to run on a Node.js older than 22, with a clear message', async () => {
    const bin = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'meshq.js')
    const old = await new Promise<{ code: number | null, stderr: string }>(resolve => {
      // a stand-in for an old Node: the check reads process.versions before anything loads
      const child = execFile(process.execPath, ['--import', 'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.1.0"})', bin, '--version'], (err, _stdout, stderr) => {
        resolve({ code: err == null ? 0 : (err as { code?: number }).code ?? 1, stderr })
      })
      child.stdin?.end()
    })
    expect(old.code).toBe(1)
    expect(old.stderr).toMatch(/needs Node.js 22 or later/)
  })
})

describe('asError', () => {
  it('gives a stream Event (what some stream APIs reject with) a readable message, not [object Event]', async () => {
    const { asError } = await import('../src/errors.js')
    expect(asError(new Event('close')).message).toBe('the stream ended (close event)')
    const withCause = Object.assign(new Event('error'), { error: new Error('reset by peer') })
    expect(asError(withCause).message).toBe('reset by peer')
    expect(asError('plain').message).toBe('plain')
    const err = new RangeError('x')
    expect(asError(err)).toBe(err)
  })
})
