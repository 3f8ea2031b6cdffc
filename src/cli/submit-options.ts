/**
 * The submit options as flags of `meshq sub`, from the one table in src/jobs/submit-options.ts.
 */
import { isRepeatable, normalize, SUBMIT_OPTIONS, type ClientRequest, type ClientSide } from '../jobs/submit-options.js'
import type { Args, FlagSpec } from './args.js'

export const SUBMIT_FLAGS: FlagSpec[] = SUBMIT_OPTIONS.map(o => ({
  name: o.flag, arg: o.arg, repeat: isRepeatable(o), help: o.help
}))

/** The submit options given as flags (only those given). */
export function submitOptionsFromArgs (args: Args, client: ClientSide): Partial<ClientRequest> {
  const request: Record<string, unknown> = {}
  for (const option of SUBMIT_OPTIONS) {
    if (!args.has(option.flag)) continue
    const raw = option.kind === 'bool' ? true : isRepeatable(option) ? args.list(option.flag) : args.string(option.flag)
    request[option.field] = normalize(option, raw, `--${option.flag}`, client)
  }
  return request
}
