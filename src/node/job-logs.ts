import type { AttemptView, JobView, PeerIdString } from '../types.js'
import type { LogStream } from '../api/engine.js'
import { UsageError } from '../errors.js'
import { isJobId } from '../crdt/facts.js'
import type { OutputFiles } from '../exec/output-files.js'
import type { LogRequest } from '../net/logs.js'
import type { Mesh } from '../net/mesh.js'

export interface JobLogsInit {
  self: PeerIdString
  outputs: OutputFiles
  mesh: Pick<Mesh, 'remoteLog'>
  /** A job's record, once this node knows it (it catches up with the other members first). */
  job: (id: string) => Promise<JobView>
}

/** `meshq logs`: a job's output, read here when this node ran it, else from the node that did. */
export class JobLogs {
  constructor (private readonly init: JobLogsInit) {}

  async * read (id: string, stream: LogStream, options: { follow: boolean, signal: AbortSignal }): AsyncIterable<Uint8Array> {
    const attempt = latestStarted(await this.init.job(id))
    if (attempt == null) return
    const request: LogRequest = { job: id, epoch: attempt.epoch, stream, follow: options.follow }
    if (attempt.node === this.init.self) yield * this.local(request, options.signal)
    else yield * this.init.mesh.remoteLog(attempt.node, request, options.signal)
  }

  /** The output of one of this node's attempts; peers read it over `/meshq/logs/1`. */
  async * local (request: LogRequest, signal: AbortSignal): AsyncIterable<Uint8Array> {
    const { job, epoch, stream, follow } = request
    // the job id names a directory: a peer's request is checked on receipt, and here again
    if (!isJobId(job)) throw new UsageError(`not a job id: ${JSON.stringify(job)}`)
    const ended = async (): Promise<boolean> =>
      (await this.init.job(job)).attempts.find(a => a.epoch === epoch && a.node === this.init.self)?.endedAt != null
    yield * this.init.outputs.read(job, epoch, stream, { follow, ended, signal })
  }
}

/** The attempt whose output `logs` shows: the latest that started. */
function latestStarted (job: JobView): AttemptView | undefined {
  return job.attempts.filter(a => a.startedAt != null).at(-1)
}
