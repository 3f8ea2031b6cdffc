/** What a job waits for, and whether a new job would wait on itself. */
import type { JobId, JobSpec } from '../types.js'

/** Every job a spec waits for, and every group, whatever the outcome it waits for. */
export const dependenciesOf = (spec: Pick<JobSpec, 'after' | 'afterAny'>): JobId[] => [...spec.after, ...spec.afterAny ?? []]
export const groupDependenciesOf = (spec: Pick<JobSpec, 'afterGroup' | 'afterGroupAny'>): string[] =>
  [...spec.afterGroup, ...spec.afterGroupAny ?? []]

/** The dependency graph as far as cycle checks need it. */
export interface DependencyGraph {
  spec: (id: JobId) => Pick<JobSpec, 'after' | 'afterGroup' | 'afterAny' | 'afterGroupAny'> | undefined
  members: (group: string) => Iterable<JobId>
}

/**
 * Whether a new job in `group` that waits on `after` and `afterGroup` would wait on itself.
 * New jobs get fresh ids, so the only way back to them is through their group: a cycle exists
 * when the job transitively depends on its own group.
 */
export function dependsOnGroup (graph: DependencyGraph, group: string, after: JobId[], afterGroup: string[]): boolean {
  const seenJobs = new Set<JobId>()
  const seenGroups = new Set<string>()
  const jobs = [...after]
  const groups = [...afterGroup]
  while (jobs.length > 0 || groups.length > 0) {
    const g = groups.pop()
    if (g != null) {
      if (g === group) return true
      if (seenGroups.has(g)) continue
      seenGroups.add(g)
      jobs.push(...graph.members(g))
      continue
    }
    const id = jobs.pop() as JobId
    if (seenJobs.has(id)) continue
    seenJobs.add(id)
    const spec = graph.spec(id)
    if (spec != null) {
      jobs.push(...dependenciesOf(spec))
      groups.push(...groupDependenciesOf(spec))
    }
  }
  return false
}
