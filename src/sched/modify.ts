import { InvalidJobError } from '../errors.js'
import type { ModifyRequest, SpecPatch } from '../types.js'
import { draftJob } from './submit.js'

const MODIFY_FIELDS = ['name', 'pri', 'retries', 'ttr', 'timeout', 'delay', 'tag', 'cores'] as const

/**
 * Checks a `mod` request and turns it into a spec patch. The fields are checked exactly as a submit
 * checks them, by drafting a stand-in job with them.
 */
export function draftPatch (req: ModifyRequest, now: number): SpecPatch {
  if (req == null || typeof req !== 'object' || Array.isArray(req)) throw new InvalidJobError('a change must be a JSON object')
  const unknown = Object.keys(req).find(k => !(MODIFY_FIELDS as readonly string[]).includes(k))
  if (unknown != null) throw new InvalidJobError(`${unknown} cannot be changed; these can: ${MODIFY_FIELDS.join(', ')}`)
  const given = (field: keyof ModifyRequest): boolean => req[field] !== undefined
  if (!MODIFY_FIELDS.some(given)) throw new InvalidJobError(`nothing to change: give one of ${MODIFY_FIELDS.join(', ')}`)
  const draft = draftJob({ cmd: ['true'], cwd: '/', ...req }, now)
  const patch: SpecPatch = {}
  if (given('name')) patch.name = draft.name
  if (given('pri')) patch.pri = draft.pri
  if (given('retries')) patch.retries = draft.retries
  if (given('ttr')) patch.ttrMs = draft.ttrMs
  if (given('timeout')) patch.timeoutMs = draft.timeoutMs
  // a zero delay makes a delayed job runnable now
  if (given('delay')) patch.notBefore = draft.notBefore ?? now
  if (given('tag')) patch.tags = draft.tags
  if (given('cores')) patch.cores = draft.cores
  return patch
}
