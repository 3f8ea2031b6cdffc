/** `meshq mod`: a change request checked as a submit is, and turned into a spec patch. */
import { InvalidJobError } from '../errors.js'
import type { ModifyRequest, SpecPatch } from '../types.js'
import { draftJob } from './draft.js'

/** Each field of a `mod` request → the spec field it changes (a field missing here does not compile). */
const PATCHED = {
  name: 'name',
  pri: 'pri',
  retries: 'retries',
  ttr: 'ttrMs',
  timeout: 'timeoutMs',
  delay: 'notBefore',
  tag: 'tags',
  cores: 'cores'
} as const satisfies { [K in keyof Required<ModifyRequest>]: keyof SpecPatch }

const MODIFY_FIELDS = Object.keys(PATCHED) as Array<keyof ModifyRequest>

/**
 * Checks a `mod` request and turns it into a spec patch. The fields are checked exactly as a submit
 * checks them, by drafting a stand-in job with them.
 */
export function draftPatch (req: ModifyRequest, now: number): SpecPatch {
  if (req == null || typeof req !== 'object' || Array.isArray(req)) throw new InvalidJobError('a change must be a JSON object')
  const unknown = Object.keys(req).find(k => !(MODIFY_FIELDS as string[]).includes(k))
  if (unknown != null) throw new InvalidJobError(`${unknown} cannot be changed; these can: ${MODIFY_FIELDS.join(', ')}`)
  const given = (field: keyof ModifyRequest): boolean => req[field] !== undefined
  if (!MODIFY_FIELDS.some(given)) throw new InvalidJobError(`nothing to change: give one of ${MODIFY_FIELDS.join(', ')}`)
  const draft = draftJob({ cmd: ['true'], cwd: '/', ...req }, now)
  const patch: Record<string, unknown> = {}
  for (const field of MODIFY_FIELDS.filter(given)) patch[PATCHED[field]] = draft[PATCHED[field]]
  // a zero delay makes a delayed job runnable now
  if (given('delay')) patch.notBefore = draft.notBefore ?? now
  return patch as SpecPatch
}
