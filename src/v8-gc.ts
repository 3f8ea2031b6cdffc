import v8 from 'node:v8'
import { runInNewContext } from 'node:vm'

/** V8's `gc` as `--expose-gc` gives it, with the options Node documents for it. */
export type Collect = (options?: { type?: 'major' | 'minor', execution?: 'sync' | 'async', flavor?: 'regular' | 'last-resort' }) => void

/** A full collection on demand, without starting the process with `--expose-gc`. */
export function exposeGc (): Collect {
  v8.setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as Collect
}
