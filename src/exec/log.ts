import createDebug from 'debug'

/** The executor's debug logger (`DEBUG=meshq:exec`). */
export const log = createDebug('meshq:exec')
