/**
 * The `--batch` input of `meshq sub` (and what an `--expand` generator prints): JSON lines, or
 * one JSON array, of job objects whose field names are SubmitRequest's or the flags'.
 */
import { UsageError } from '../errors.js'
import type { SubmitRequest } from '../types.js'
import { buildRequest, normalize, SUBMIT_OPTIONS, type ClientRequest, type ClientSide, type SubmitOption } from './submit-options.js'

const OPTION_BY_NAME = new Map<string, SubmitOption>(SUBMIT_OPTIONS.flatMap(o => [[o.field, o], [o.flag, o]]))

/** One `--batch` job object (field names: SubmitRequest's or the flags'). */
function jobFromJson (value: unknown, defaults: Partial<ClientRequest>, client: ClientSide): SubmitRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError('expected a JSON object')
  const { cmd, ...rest } = value as Record<string, unknown>
  if (typeof cmd === 'string') throw new UsageError('cmd must be an array of strings (e.g. ["sh", "-c", "..."]), not a string')
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every(a => typeof a === 'string')) {
    throw new UsageError('cmd must be a non-empty array of strings')
  }
  const fields: Record<string, unknown> = {}
  for (const [name, raw] of Object.entries(rest)) {
    const option = OPTION_BY_NAME.get(name)
    if (option === undefined) throw new UsageError(`unknown field '${name}'`)
    if (raw === null) continue
    fields[option.field] = normalize(option, raw, option.field, client)
  }
  return buildRequest(cmd, { ...defaults, ...fields }, client)
}

export const MAX_BATCH_LINE_BYTES = 1024 * 1024

/**
 * Parses `--batch` input: JSON lines, or one JSON array, of job objects. Any error names the line
 * (or the array item) and nothing is returned. `defaults` are the flags given with `--batch`.
 */
export function parseBatch (input: string, defaults: Partial<ClientRequest>, client: ClientSide): SubmitRequest[] {
  const jobs = input.trimStart().startsWith('[') ? parseArray(input, defaults, client) : parseLines(input, defaults, client)
  if (jobs.length === 0) throw new UsageError('--batch: no jobs on stdin')
  return jobs
}

const located = (where: string, err: unknown): UsageError =>
  new UsageError(`${where}: ${err instanceof Error ? err.message : String(err)}`)

function parseArray (input: string, defaults: Partial<ClientRequest>, client: ClientSide): SubmitRequest[] {
  let items: unknown
  try {
    items = JSON.parse(input)
  } catch (err) {
    throw located('input', err)
  }
  if (!Array.isArray(items)) throw new UsageError('input: expected one JSON array of job objects')
  return items.map((item, i) => {
    try {
      return jobFromJson(item, defaults, client)
    } catch (err) {
      throw located(`item ${i + 1}`, err)
    }
  })
}

function parseLines (input: string, defaults: Partial<ClientRequest>, client: ClientSide): SubmitRequest[] {
  const jobs: SubmitRequest[] = []
  input.split('\n').forEach((line, i) => {
    const where = `line ${i + 1}`
    if (Buffer.byteLength(line) > MAX_BATCH_LINE_BYTES) throw new UsageError(`${where}: longer than 1 MiB`)
    if (line.trim() === '') return
    try {
      jobs.push(jobFromJson(JSON.parse(line), defaults, client))
    } catch (err) {
      throw located(where, err)
    }
  })
  return jobs
}
