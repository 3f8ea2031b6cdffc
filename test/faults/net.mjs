/**
 * The fault suite's network: one network namespace per node, linked into one L2 segment in the
 * root namespace, and the faults that can be done to it.
 *
 * Two kinds of segment:
 * - `bridge` (default): a veth pair per node into a Linux bridge. Partitions move the minority's
 *   veths to a second bridge, isolation sets a node's veth down, a one-way partition is a policy
 *   routing rule inside the node's namespace that blackholes what arrives from the others (the
 *   effect of `iptables -A INPUT -s NET -j DROP`, without iptables, which this machine lacks).
 * - `switch`: a TAP device per node, switched by test/faults/switch.py, which can drop and delay
 *   frames. This replaces `tc qdisc ... netem`: the kernel here has no sch_netem.
 */
import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const SWITCH = fileURLToPath(new URL('./switch.py', import.meta.url))

export class NetworkError extends Error {
  name = 'NetworkError'
}

function run (...args) {
  try {
    return execFileSync(args[0], args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString()
  } catch (err) {
    throw new NetworkError(`${args.join(' ')}: ${err.stderr?.toString().trim() || err.message}`)
  }
}

const quietly = (...args) => { try { run(...args) } catch { /* best effort: it may already be gone */ } }

/** Why this machine cannot run the suite, or undefined if it can. */
export function unsupportedReason () {
  if (process.getuid?.() !== 0) return 'the fault suite needs root (network namespaces)'
  if (!['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].some(existsSync)) return 'the fault suite needs iproute2 (`ip`)'
  const probe = `mqprobe${process.pid % 100000}`
  try {
    run('ip', 'netns', 'add', probe)
  } catch (err) {
    return `cannot create network namespaces: ${err.message}`
  } finally {
    quietly('ip', 'netns', 'del', probe)
  }
  return undefined
}

/** A run id unused by any other run on this machine: part of every name, and the subnet 10.77.<id>.0/24. */
export function freeRunId (random) {
  const used = run('ip', '-o', 'link', 'show').toString()
  for (let tries = 0; tries < 500; tries++) {
    const id = 1 + Math.floor(random() * 254)
    if (!used.includes(`mqbr-${id}:`) && !used.includes(`mqbr-${id}@`) && !run('ip', 'netns', 'list').includes(`mq-${id}-`)) return id
  }
  throw new NetworkError('no free run id: clean up stale mq-* namespaces (ip netns list)')
}

export class Network {
  /** @param {{ runId: number, size: number, kind?: 'bridge' | 'switch', seed?: number }} init */
  constructor ({ runId, size, kind = 'bridge', seed = 1 }) {
    this.runId = runId
    this.size = size
    this.kind = kind
    this.seed = seed
    this.bridges = [`mqbr-${runId}`, `mqbr-${runId}b`]
    /** Directed pairs `a>b` (node numbers) whose packets are dropped now. */
    this.cut = new Set()
    this.cutListeners = []
    this.isolated = new Set()
    this.oneWay = new Set()
    this.minority = []
  }

  ns (i) { return `mq-${this.runId}-${i}` }
  ip (i) { return `10.77.${this.runId}.${i}` }
  listen (i) { return `/ip4/${this.ip(i)}/tcp/7746` }
  /** Interface names are at most 15 characters. */
  hostSide (i) { return `mq${this.runId}h${i}` }
  nodeSide (i) { return this.kind === 'switch' ? `mq${this.runId}t${i}` : `mq${this.runId}n${i}` }
  /** Prefix for running a command inside node i's namespace. */
  wrap (i) { return ['ip', 'netns', 'exec', this.ns(i)] }

  async up () {
    if (this.kind === 'switch') await this.startSwitch()
    else for (const b of this.bridges) { run('ip', 'link', 'add', b, 'type', 'bridge'); run('ip', 'link', 'set', b, 'up') }
    for (let i = 1; i <= this.size; i++) {
      run('ip', 'netns', 'add', this.ns(i))
      if (this.kind === 'bridge') {
        run('ip', 'link', 'add', this.hostSide(i), 'type', 'veth', 'peer', 'name', this.nodeSide(i))
        run('ip', 'link', 'set', this.hostSide(i), 'master', this.bridges[0], 'up')
      }
      run('ip', 'link', 'set', this.nodeSide(i), 'netns', this.ns(i))
      const inNs = (...args) => run(...this.wrap(i), ...args)
      inNs('ip', 'addr', 'add', `${this.ip(i)}/24`, 'dev', this.nodeSide(i))
      inNs('ip', 'link', 'set', this.nodeSide(i), 'up')
      inNs('ip', 'link', 'set', 'lo', 'up')
      // the local table after our blackhole rules, so that they see packets addressed to this host
      inNs('ip', 'rule', 'add', 'pref', '100', 'lookup', 'local')
      inNs('ip', 'rule', 'del', 'pref', '0')
    }
  }

  async startSwitch () {
    const taps = Array.from({ length: this.size }, (_, k) => this.nodeSide(k + 1))
    this.switch = spawn('python3', [SWITCH, String(this.seed), ...taps], { stdio: ['pipe', 'pipe', 'inherit'] })
    await new Promise((resolve, reject) => {
      this.switch.once('error', reject)
      this.switch.once('exit', code => reject(new NetworkError(`switch.py exited ${code}`)))
      this.switch.stdout.once('data', resolve)
    })
  }

  /** Removes everything `up` made; safe to call twice and after a partial `up`. */
  down () {
    this.switch?.kill('SIGKILL')
    for (let i = 1; i <= this.size; i++) quietly('ip', 'netns', 'del', this.ns(i))
    for (const b of this.bridges) quietly('ip', 'link', 'del', b)
  }

  /** Gives the root namespace an address on the segment, so the harness itself can be a peer. */
  attachHost () {
    run('ip', 'addr', 'add', `10.77.${this.runId}.254/24`, 'dev', this.bridges[0])
    return `10.77.${this.runId}.254`
  }

  /** Splits the nodes: `minority` on one side, every other node on the other. */
  partition (minority) {
    if (this.kind !== 'bridge') throw new NetworkError('partitions need the bridge network')
    for (const i of minority) run('ip', 'link', 'set', this.hostSide(i), 'master', this.bridges[1])
    this.minority = [...minority]
    this.recompute()
  }

  /** Cuts node i off from everyone (its link goes down). */
  isolate (i) {
    run('ip', 'link', 'set', this.hostSide(i), 'down')
    this.isolated.add(i)
    this.recompute()
  }

  /** Node i no longer receives anything from the others; they still receive from it. */
  dropIncoming (i) {
    run(...this.wrap(i), 'ip', 'rule', 'add', 'pref', '10', 'iif', this.nodeSide(i), 'from', `10.77.${this.runId}.0/24`, 'blackhole')
    this.oneWay.add(i)
    this.recompute()
  }

  /** Loss and delay on every frame (switch network only). */
  impair ({ loss = 0, delayMs = 0, jitterMs = 0 }) {
    if (this.switch == null) throw new NetworkError('loss and delay need the switch network')
    this.switch.stdin.write(JSON.stringify({ loss, delayMs, jitterMs }) + '\n')
  }

  heal () {
    for (const i of this.minority) run('ip', 'link', 'set', this.hostSide(i), 'master', this.bridges[0])
    for (const i of this.isolated) run('ip', 'link', 'set', this.hostSide(i), 'up')
    for (const i of this.oneWay) quietly(...this.wrap(i), 'ip', 'rule', 'del', 'pref', '10')
    if (this.switch != null) this.impair({})
    this.minority = []
    this.isolated.clear()
    this.oneWay.clear()
    this.recompute()
  }

  /** Whether packets go from a to b now. */
  reaches (a, b) { return !this.cut.has(`${a}>${b}`) }

  onCut (listener) { this.cutListeners.push(listener) }

  recompute () {
    const cut = new Set()
    const all = Array.from({ length: this.size }, (_, k) => k + 1)
    const side = i => this.minority.includes(i)
    for (const a of all) {
      for (const b of all) {
        if (a === b) continue
        if (side(a) !== side(b) || this.isolated.has(a) || this.isolated.has(b) || this.oneWay.has(b)) cut.add(`${a}>${b}`)
      }
    }
    this.cut = cut
    for (const listener of this.cutListeners) listener([...cut])
  }
}
