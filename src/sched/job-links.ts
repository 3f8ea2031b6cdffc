import type { JobId, JobSpec } from '../types.js'
import { addTo } from '../collections.js'
import { dependenciesOf, groupDependenciesOf } from '../jobs/dependencies.js'
import { submittedFirst } from './run-order.js'
import type { Ordered } from './run-order.js'

/**
 * Who waits for whom and who belongs where: the jobs that wait for a job (`--after`, `--after-any`)
 * or a group (`--after-group`, `--after-group-any`), each group's members, and the job that holds
 * each idempotency key (`--id KEY`).
 */
export class JobLinks {
  private readonly dependants = new Map<JobId, Set<JobId>>()
  private readonly groupDependants = new Map<string, Set<JobId>>()
  private readonly members = new Map<string, Set<JobId>>()
  private readonly keys = new Map<string, JobId>()

  /** Links a job (or an array) to what it waits for and to its group. */
  link (spec: JobSpec): void {
    for (const dep of dependenciesOf(spec)) addTo(this.dependants, dep, spec.id)
    for (const group of groupDependenciesOf(spec)) addTo(this.groupDependants, group, spec.id)
    if (spec.group != null) addTo(this.members, spec.group, spec.id)
  }

  dependantsOf (id: JobId): Iterable<JobId> {
    return this.dependants.get(id) ?? []
  }

  groupDependantsOf (group: string): Iterable<JobId> {
    return this.groupDependants.get(group) ?? []
  }

  membersOf (group: string): Iterable<JobId> {
    return this.members.get(group) ?? []
  }

  addMember (group: string, id: JobId): void {
    addTo(this.members, group, id)
  }

  removeMember (group: string, id: JobId): void {
    this.members.get(group)?.delete(id)
  }

  byKey (key: string): JobId | undefined {
    return this.keys.get(key)
  }

  /** The idempotency key goes to the first submitted of the specs that carry it (`specOf` finds the holder's). */
  claimKey (spec: JobSpec, specOf: (id: JobId) => Omit<Ordered, 'pri'> | undefined): void {
    if (spec.key == null) return
    const holder = this.keys.get(spec.key)
    const holderSpec = holder == null ? undefined : specOf(holder)
    if (holderSpec == null || submittedFirst(spec, holderSpec)) this.keys.set(spec.key, spec.id)
  }

  /** Gives a key to a job of a sealed segment, unless a job in memory holds it. */
  keepKey (key: string, id: JobId): void {
    if (!this.keys.has(key)) this.keys.set(key, id)
  }

  releaseKey (key: string, id: JobId): void {
    if (this.keys.get(key) === id) this.keys.delete(key)
  }
}
