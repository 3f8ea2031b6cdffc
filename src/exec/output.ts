/**
 * Capturing a job's output into files with bounded size and bounded memory.
 */
import { constants } from 'node:fs'
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Readable } from 'node:stream'
import { log } from './log.js'
import type { OutputPaths, OutputStream } from './output-files.js'

const TAIL_BYTES = 2048
const TAIL_LINES = 10
const COPY_CHUNK = 64 * 1024
/** Output may hold secrets: only the node's user reads it. */
const FILE_MODE = 0o600
/**
 * A job's `--out` file is appended to, and never through a symlink: a local user could plant one
 * at the path to make a job (perhaps root's) write to a file of their choice.
 */
const OUT_FILE_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW

interface Spill {
  path: string
  handle: FileHandle
  size: number
}

interface CappedFileInit {
  path: string
  /** 'w' truncates the file, 'a' appends to it; OUT_FILE_FLAGS appends to a job's `--out` file. */
  flags: 'w' | 'a' | number
  capBytes: number
  /** Prefix of the two scratch files that hold the latest output while it exceeds the head. */
  spillPath: string
}

/**
 * A file that keeps the first half of the cap (the head) and the last half (the tail) of what is
 * written to it. The head goes straight to the file. Past it, output goes to two scratch files used in
 * turn, each up to half the cap: the current one and the previous one always hold at least the last
 * half. `close()` then appends a marker and the tail to the file.
 * Write errors are logged and then ignored (the job keeps running; counts stay exact).
 */
class CappedFile {
  readonly #main: FileHandle
  readonly #headLimit: number
  readonly #tailLimit: number
  readonly #spillPath: string
  #headBytes = 0
  #bytes = 0
  #spills = 0
  #current?: Spill
  #previous?: Spill
  #pending: Promise<void> = Promise.resolve()
  #failed = false

  private constructor (main: FileHandle, init: CappedFileInit) {
    this.#main = main
    this.#headLimit = Math.floor(init.capBytes / 2)
    this.#tailLimit = init.capBytes - this.#headLimit
    this.#spillPath = init.spillPath
  }

  static async open (init: CappedFileInit): Promise<CappedFile> {
    return new CappedFile(await open(init.path, init.flags, FILE_MODE), init)
  }

  /** Bytes written so far, including those that will be omitted. */
  get bytes (): number {
    return this.#bytes
  }

  get truncated (): boolean {
    return this.#bytes > this.#headLimit + this.#tailLimit
  }

  /** Writes are applied in call order. */
  async write (chunk: Buffer): Promise<void> {
    this.#bytes += chunk.length
    this.#pending = this.#pending.then(async () => { if (!this.#failed) await this.#append(chunk) }).catch(this.#fail)
    await this.#pending
  }

  /** Puts the tail after the head and closes everything. Never rejects. */
  async close (): Promise<void> {
    await this.#pending
    if (!this.#failed) await this.#appendTail().catch(this.#fail)
    const spills = [this.#previous, this.#current].filter(spill => spill !== undefined)
    await Promise.all(spills.map(async spill => {
      await spill.handle.close()
      await rm(spill.path, { force: true })
    })).catch(this.#fail)
    await this.#main.close().catch(this.#fail)
  }

  readonly #fail = (err: unknown): void => {
    this.#failed = true
    log('output write failed: %O', err)
  }

  async #append (chunk: Buffer): Promise<void> {
    const head = chunk.subarray(0, this.#headLimit - this.#headBytes)
    await writeAll(this.#main, head)
    this.#headBytes += head.length
    let rest = chunk.subarray(head.length)
    while (rest.length > 0) {
      let spill = this.#current
      if (spill === undefined || spill.size === this.#tailLimit) spill = await this.#rotate()
      const part = rest.subarray(0, this.#tailLimit - spill.size)
      await writeAll(spill.handle, part)
      spill.size += part.length
      rest = rest.subarray(part.length)
    }
  }

  /** Starts a new scratch file, reusing the one that no longer holds any of the tail. */
  async #rotate (): Promise<Spill> {
    await this.#previous?.handle.close()
    this.#previous = this.#current
    const path = `${this.#spillPath}.${this.#spills++ % 2}`
    this.#current = { path, handle: await open(path, 'w+', FILE_MODE), size: 0 }
    return this.#current
  }

  async #appendTail (): Promise<void> {
    if (this.#current === undefined) return
    if (this.#previous !== undefined) {
      const omitted = this.#bytes - this.#headLimit - this.#tailLimit
      await writeAll(this.#main, Buffer.from(`\n[meshq: ${omitted} bytes omitted]\n`))
      await copyRange(this.#previous.handle, this.#current.size, this.#previous.size, this.#main)
    }
    await copyRange(this.#current.handle, 0, this.#current.size, this.#main)
  }
}

async function writeAll (handle: FileHandle, data: Buffer): Promise<void> {
  for (let offset = 0; offset < data.length;) {
    offset += (await handle.write(data, offset)).bytesWritten
  }
}

async function copyRange (from: FileHandle, start: number, end: number, to: FileHandle): Promise<void> {
  const buffer = Buffer.allocUnsafe(Math.min(COPY_CHUNK, end - start))
  for (let position = start; position < end;) {
    const { bytesRead } = await from.read(buffer, 0, Math.min(buffer.length, end - position), position)
    if (bytesRead === 0) return
    await writeAll(to, buffer.subarray(0, bytesRead))
    position += bytesRead
  }
}

/** The last lines of a job's output (stdout and stderr interleaved as seen). */
class TailBuffer {
  #last = Buffer.alloc(0)

  push (chunk: Buffer): void {
    this.#last = Buffer.concat([this.#last, chunk.subarray(-TAIL_BYTES)]).subarray(-TAIL_BYTES)
  }

  /** The last TAIL_LINES lines, at most TAIL_BYTES bytes of UTF-8. */
  text (): string {
    const lines = decodeSuffix(this.#last).split('\n')
    if (lines.at(-1) === '') lines.pop()
    return decodeSuffix(Buffer.from(lines.slice(-TAIL_LINES).join('\n')))
  }
}

/** Decodes the last TAIL_BYTES bytes, dropping a character cut at the start. */
function decodeSuffix (bytes: Buffer): string {
  return bytes.subarray(-TAIL_BYTES).toString('utf8').replace(/^\uFFFD+/, '')
}

export interface OutputSummary {
  stdoutBytes: number
  stderrBytes: number
  truncated: boolean
  tail: string
}

/**
 * Everything a job writes: one capped file per stream, optionally a combined capped copy appended to
 * the job's `out` file (cap: both streams' caps), and the tail.
 */
export class JobOutputs {
  readonly #stdout: CappedFile
  readonly #stderr: CappedFile
  readonly #combined?: CappedFile
  readonly #tail = new TailBuffer()

  private constructor (stdout: CappedFile, stderr: CappedFile, combined?: CappedFile) {
    this.#stdout = stdout
    this.#stderr = stderr
    this.#combined = combined
  }

  static async open (paths: OutputPaths, out: string | undefined, capBytes: number): Promise<JobOutputs> {
    await mkdir(dirname(paths.stdout), { recursive: true })
    if (out !== undefined) await mkdir(dirname(out), { recursive: true })
    const inits: CappedFileInit[] = [
      { path: paths.stdout, flags: 'w', capBytes, spillPath: `${paths.stdout}.spill` },
      { path: paths.stderr, flags: 'w', capBytes, spillPath: `${paths.stderr}.spill` }
    ]
    if (out !== undefined) inits.push({ path: out, flags: OUT_FILE_FLAGS, capBytes: 2 * capBytes, spillPath: `${paths.stdout}.out.spill` })
    const [stdout, stderr, combined] = await openAll(inits)
    return new JobOutputs(stdout, stderr, combined)
  }

  /** Copies `source` to its file, to `out` and to the tail until it ends. Never rejects. */
  async consume (source: Readable, stream: OutputStream): Promise<void> {
    const file = stream === 'stdout' ? this.#stdout : this.#stderr
    try {
      for await (const chunk of source) {
        this.#tail.push(chunk)
        await Promise.all([file.write(chunk), this.#combined?.write(chunk)])
      }
    } catch (err) {
      log('reading %s failed: %O', stream, err)
    }
  }

  async close (): Promise<OutputSummary> {
    await Promise.all([this.#stdout.close(), this.#stderr.close(), this.#combined?.close()])
    return {
      stdoutBytes: this.#stdout.bytes,
      stderrBytes: this.#stderr.bytes,
      truncated: this.#stdout.truncated || this.#stderr.truncated,
      tail: this.#tail.text()
    }
  }
}

/** Opens all files or none. */
async function openAll (inits: CappedFileInit[]): Promise<CappedFile[]> {
  const opened = await Promise.allSettled(inits.map(CappedFile.open))
  const files = opened.flatMap(result => result.status === 'fulfilled' ? [result.value] : [])
  if (files.length === inits.length) return files
  await Promise.all(files.map(async file => { await file.close() }))
  throw opened.find(result => result.status === 'rejected')?.reason
}
