/**
 * Containing a job's whole process tree in a cgroup (v2): a process can leave the job's process group
 * and session (`setsid`), but not its cgroup, and `cgroup.kill` SIGKILLs everything in one at once.
 *
 * The node makes one cgroup for itself, `meshq-<pid>-<random>`, beside (below) the cgroup it runs in,
 * and one per job inside that. A job is born in its cgroup: the spawner (`spawner/`), which runs in the
 * node's own cgroup, moves itself into the job's cgroup, spawns, and moves back (two writes, well under
 * a millisecond), so no process of the job ever runs outside it, without a helper process per job.
 * Nothing here enables a controller: the cgroups only group processes, so they cost no accounting
 * and put no limit on the jobs.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ContainmentError } from './errors.js'
import { log } from './log.js'

/** How long removing a killed job's cgroup waits for its processes to be gone. */
const REMOVE_TIMEOUT_MS = 10_000
const REMOVE_POLL_MS = 20

/** A node's cgroup directory name: `meshq-<pid>-<random>`; the pid tells a dead node's leftover. */
const NODE_CGROUP = /^meshq-(\d+)-[0-9a-f]+$/

const errorCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code

/** Octal escapes of `/proc/self/mountinfo` (`\040` for a space). */
const unescapeMountPath = (path: string): string =>
  path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))

/** Where this process's cgroup v2 directory is: its path in `/proc/self/cgroup` under the cgroup2 mount. */
function ownCgroupDir (): string {
  const entry = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find(line => line.startsWith('0::'))
  if (entry === undefined) throw new ContainmentError('this process is in no cgroup v2 hierarchy')
  const path = entry.slice(3)
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [fields, fsFields] = line.split(' - ')
    if (fsFields?.split(' ')[0] !== 'cgroup2') continue
    const [, , , root, point] = fields.split(' ')
    const prefix = root === '/' ? '' : unescapeMountPath(root)
    if (path === prefix || path.startsWith(`${prefix}/`)) return join(unescapeMountPath(point), path.slice(prefix.length))
  }
  throw new ContainmentError(`the cgroup v2 hierarchy that holds ${path} is not mounted here`)
}

/** Moves this whole process (every thread) into the cgroup `dir`. */
function moveSelf (dir: string): void {
  writeFileSync(join(dir, 'cgroup.procs'), String(process.pid))
}

function isAlive (pid: number): boolean {
  return existsSync(`/proc/${pid}`)
}

/** Removes the empty cgroups that nodes which died (and whose watchdogs died too) left in `parent`. */
function removeLeftovers (parent: string): void {
  for (const name of readdirSync(parent)) {
    const match = NODE_CGROUP.exec(name)
    if (match === null || isAlive(Number(match[1]))) continue
    const dir = join(parent, name)
    try {
      for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) rmdirSync(join(dir, entry.name))
      rmdirSync(dir)
    } catch (err) {
      log('leaving %s: %s', dir, (err as Error).message)
    }
  }
}

/** SIGKILLs every process in the cgroup `dir`, wherever it is in the job's tree or its sessions. */
export function killCgroup (dir: string): void {
  try {
    writeFileSync(join(dir, 'cgroup.kill'), '1')
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') log('cannot kill cgroup %s: %s', dir, (err as Error).message)
  }
}

export class JobCgroup {
  /** Its name in the node's cgroup. */
  readonly name: string
  readonly dir: string

  constructor (name: string, dir: string) {
    this.name = name
    this.dir = dir
  }

  /** SIGKILLs every process in the cgroup, wherever it is in the job's tree or its sessions. */
  kill (): void {
    killCgroup(this.dir)
  }

  /** Removes the cgroup once the processes in it are gone; never rejects. */
  async remove (): Promise<void> {
    const deadline = performance.now() + REMOVE_TIMEOUT_MS
    for (;;) {
      try {
        rmdirSync(this.dir)
        return
      } catch (err) {
        if (errorCode(err) === 'ENOENT') return
        if (errorCode(err) !== 'EBUSY' || performance.now() > deadline) {
          log('cannot remove cgroup %s: %s', this.dir, (err as Error).message)
          return
        }
      }
      await new Promise(resolve => setTimeout(resolve, REMOVE_POLL_MS))
    }
  }
}

export class NodeCgroup {
  readonly dir: string
  /** The cgroup the node runs in, and returns to after each spawn. */
  readonly home: string
  #jobs = 0

  private constructor (dir: string, home: string) {
    this.dir = dir
    this.home = home
  }

  /**
   * Makes the node's cgroup below the one it runs in. Throws `ContainmentError` (after undoing what
   * it did) where that is not possible: no cgroup v2, no `cgroup.kill` (Linux < 5.14), or no
   * permission (an unprivileged user without a delegated cgroup).
   */
  static open (): NodeCgroup {
    let home: string
    try {
      home = ownCgroupDir()
      removeLeftovers(home)
    } catch (err) {
      throw err instanceof ContainmentError ? err : new ContainmentError((err as Error).message)
    }
    const dir = join(home, `meshq-${process.pid}-${randomBytes(4).toString('hex')}`)
    try {
      mkdirSync(dir)
    } catch (err) {
      throw new ContainmentError(`cannot make a cgroup: ${(err as Error).message}`)
    }
    try {
      if (!existsSync(join(dir, 'cgroup.kill'))) throw new ContainmentError('this kernel has no cgroup.kill (Linux 5.14 and later have it)')
      // what every spawn will do: proves both moves are allowed here
      moveSelf(dir)
      moveSelf(home)
    } catch (err) {
      rmdirSync(dir)
      throw err instanceof ContainmentError ? err : new ContainmentError(`cannot move processes between cgroups: ${(err as Error).message}`)
    }
    log('jobs are contained in cgroups under %s', dir)
    return new NodeCgroup(dir, home)
  }

  /** Makes the cgroup of the next job, for the spawner to start it in (`spawnInside`); undefined if it cannot. */
  newJob (): JobCgroup | undefined {
    const name = String(++this.#jobs)
    const cgroup = new JobCgroup(name, join(this.dir, name))
    try {
      mkdirSync(cgroup.dir)
      return cgroup
    } catch (err) {
      log('job not contained: cannot make cgroup %s: %s', cgroup.dir, (err as Error).message)
      return undefined
    }
  }
}

/**
 * Runs `spawn` (which must spawn synchronously) with this process inside the cgroup `dir`, so that the
 * child starts there, then moves back to `home`. If the move is refused the child starts uncontained.
 * The whole process moves, so this relies on no other thread spawning meanwhile: Node spawns from
 * the main thread only, and the spawner starts no worker threads.
 */
export function spawnInside<T> (dir: string, home: string, spawn: () => T): { value: T, contained: boolean } {
  let contained = false
  try {
    moveSelf(dir)
    contained = true
  } catch (err) {
    log('job not contained: cannot enter cgroup %s: %s', dir, (err as Error).message)
  }
  try {
    return { value: spawn(), contained }
  } finally {
    if (contained) moveSelf(home)
  }
}
