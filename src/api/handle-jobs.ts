/** The routes about jobs: submit, list, read, act on them. */
import type { ModifyRequest, SubmitRequest } from '../types.js'
import { badRequest, type Handlers } from './dispatch.js'
import type { Engine } from './engine.js'
import { isObject, jobIds, listQuery, readJson, selector } from './request-body.js'

type JobRoute = 'submit' | 'list' | 'kill' | 'retry' | 'remove' | 'modify' | 'states' | 'get' | 'catchUp'

export function jobHandlers (engine: Engine): Pick<Handlers, JobRoute> {
  return {
    submit: async ({ req, signal }) => {
      const { jobs } = await readJson(req)
      if (!Array.isArray(jobs) || !jobs.every(isObject)) throw badRequest('body must be {"jobs": [ {...}, ... ]}')
      return { jobs: await engine.submit(jobs as unknown as SubmitRequest[], signal) }
    },
    list: async ({ url }) => ({ jobs: await engine.list(listQuery(url)) }),
    kill: async ({ req }) => ({ jobs: await engine.kill(selector(await readJson(req))) }),
    retry: async ({ req }) => ({ jobs: await engine.retry(selector(await readJson(req))) }),
    remove: async ({ req }) => {
      const body = await readJson(req)
      const jobs = await engine.remove(selector(body))
      // the records only on request ("records": true), e.g. for `rm --json` to print them as submits
      return { ids: jobs.map(job => job.id), ...(body.records === true ? { jobs } : {}) }
    },
    modify: async ({ req }) => {
      const body = await readJson(req)
      if (!isObject(body.change)) throw badRequest('body must be {"ids": [...] or "group": G, "change": {...}}')
      return { jobs: await engine.modify(selector(body), body.change as ModifyRequest) }
    },
    states: async ({ req }) => ({ jobs: await engine.states(jobIds(await readJson(req))) }),
    get: async ({ params }) => await engine.get(params[0]),
    catchUp: async () => await engine.catchUp()
  }
}
