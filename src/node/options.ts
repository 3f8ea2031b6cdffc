/** What `meshq node` hands to `runNode` (src/node/run.ts). Dependency-free. */
export interface NodeOptions {
  /** Absolute path of the node's home directory. */
  home: string
  /** libp2p listen multiaddrs (default `/ip4/0.0.0.0/tcp/7746`). */
  listen: string[]
  /** Job slots; absent: the node's default. */
  slots?: number
  tags: string[]
  /** A join token from `meshq invite`, as given, read from a file or stdin, or from $MESHQ_JOIN_TOKEN. */
  join?: string
  /** `HOST:PORT` to serve the TCP control API on (bearer token in `$home/api-token`). */
  api?: string
  /** How long a killed job gets between SIGTERM and SIGKILL. */
  killGraceMs?: number
  /** false: no cgroup per job (`--no-cgroups`), only its process group is contained. */
  cgroups?: boolean
  /** How long each lower-ranked node waits before it also claims a ready job. */
  claimWindowMs?: number
  /** Drop finished history older than this (`meshq gc` every hour). */
  retainMs?: number
  /** Memory for jobs' `--mem`, in bytes; absent: what the OS has available. */
  memBytes?: number
}
