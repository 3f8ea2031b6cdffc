/**
 * The dashboard's text, as pure functions: table columns that fit a width, the header's segments,
 * sparklines, short ids. The components add colour; the plain snapshot joins the same text.
 */
import { shellQuote } from '../shell-quote.js'
import { formatDuration } from '../duration.js'
import {
  isTerminal, JOB_STATES, type AttemptView, type JobState, type JobView, type NodeStatus, type PeerView, type StatsView
} from '../types.js'
import type { JobFilter, JobRow } from './store.js'

/** A piece of a line; `color` is a colour name the components use unless NO_COLOR is set. */
export interface Segment {
  text: string
  color?: string
  bold?: boolean
}

export const STATE_COLORS: Record<JobState, string> = {
  pending: 'gray', ready: 'yellow', running: 'cyan', done: 'green', failed: 'red', killed: 'magenta'
}

// eslint-disable-next-line no-control-regex -- matching control characters is this pattern's job
const CONTROL = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]/g

/** One line of untrusted text made safe to print: escape sequences and control characters removed, tabs expanded. */
export function clean (text: string): string {
  return text.replace(/\t/g, '  ').replace(/\n/g, ' ').replace(CONTROL, '')
}

/** `text` cut or padded to exactly `width` characters. */
export function fit (text: string, width: number, align: 'left' | 'right' = 'left'): string {
  const flat = clean(text)
  if (flat.length > width) return width <= 1 ? flat.slice(0, width) : flat.slice(0, width - 1) + '…'
  return align === 'left' ? flat.padEnd(width) : flat.padStart(width)
}

/** Peer ids share their first characters (`12D3KooW…`): the last six tell them apart. */
export function shortPeer (id: string): string {
  return id.slice(-6)
}

export interface Column<T> {
  title: string
  /** Width in characters; the flexible column takes what the others leave. */
  width: number
  flex?: boolean
  /** Columns with a `drop` rank are left out, lowest first, when the width is too small. */
  drop?: number
  align?: 'left' | 'right'
  cell: (row: T, now: number) => string
  color?: (row: T) => string | undefined
}

const MIN_FLEX = 12

/** The columns that fit `width` (one space between columns), with the flexible one widened to fill it. */
export function layout<T> (columns: ReadonlyArray<Column<T>>, width: number): Array<Column<T>> {
  let shown = [...columns]
  const used = (): number => shown.reduce((sum, c) => sum + (c.flex === true ? MIN_FLEX : c.width) + 1, -1)
  const droppable = columns.filter(c => c.drop !== undefined).sort((a, b) => (a.drop ?? 0) - (b.drop ?? 0))
  for (const column of droppable) {
    if (used() <= width) break
    shown = shown.filter(c => c !== column)
  }
  const spare = Math.max(0, width - used())
  return shown.map(c => c.flex === true ? { ...c, width: MIN_FLEX + spare } : c)
}

export function headerCells<T> (columns: ReadonlyArray<Column<T>>): string[] {
  return columns.map(c => fit(c.title, c.width, c.align))
}

export function rowCells<T> (columns: ReadonlyArray<Column<T>>, row: T, now: number): string[] {
  return columns.map(c => fit(c.cell(row, now), c.width, c.align))
}

/** Run time for started jobs (so far, or in total), age for jobs not started (as `meshq ls` shows it). */
function rowTime (job: JobRow, now: number): string {
  if (job.startedAt !== undefined) return formatDuration(Math.max(0, (job.state === 'running' ? now : job.endedAt ?? now) - job.startedAt))
  return isTerminal(job.state) ? '-' : formatDuration(Math.max(0, now - job.submittedAt))
}

export const JOB_COLUMNS: ReadonlyArray<Column<JobRow>> = [
  { title: 'ID', width: 12, cell: job => job.id },
  { title: 'STATE', width: 7, cell: job => job.state, color: job => STATE_COLORS[job.state] },
  { title: 'GROUP', width: 10, drop: 2, cell: job => job.group ?? '-' },
  { title: 'NAME/COMMAND', width: 0, flex: true, cell: job => job.label },
  { title: 'NODE', width: 6, drop: 1, cell: job => job.node === undefined ? '-' : shortPeer(job.node) },
  { title: 'TRY', width: 3, drop: 0, align: 'right', cell: job => String(job.tries) },
  { title: 'TIME', width: 7, align: 'right', cell: rowTime },
  { title: 'EXIT', width: 4, align: 'right', cell: job => job.exit }
]

const PEER_COLORS: Record<PeerView['state'], string> = { up: 'green', draining: 'yellow', unreachable: 'red' }

/** A member and the ids of the jobs it runs. */
export interface PeerRow {
  peer: PeerView
  running: string[]
}

export const PEER_COLUMNS: ReadonlyArray<Column<PeerRow>> = [
  { title: 'NODE', width: 11, cell: ({ peer }) => shortPeer(peer.id) + (peer.self ? ' self' : '') },
  { title: 'STATE', width: 11, cell: ({ peer }) => peer.state, color: ({ peer }) => PEER_COLORS[peer.state] },
  { title: 'SLOTS', width: 5, align: 'right', cell: ({ peer }) => `${peer.running}/${peer.slots}` },
  { title: 'RUNNING', width: 0, flex: true, cell: ({ running }) => running.join(' ') || '-' },
  { title: 'TAGS', width: 12, drop: 1, cell: ({ peer }) => peer.tags.join(',') || '-' },
  { title: 'ADDRESS', width: 26, drop: 0, cell: ({ peer }) => peer.addrs[0] ?? '-' }
]

/** The peers view's rows: this node first, then by id; `running` are the running jobs. */
export function peerRows (peers: readonly PeerView[], running: readonly JobRow[]): PeerRow[] {
  const sorted = [...peers].sort((a, b) => Number(b.self) - Number(a.self) || (a.id < b.id ? -1 : 1))
  return sorted.map(peer => ({ peer, running: running.filter(job => job.node === peer.id).map(job => job.id) }))
}

export const ATTEMPT_COLUMNS: ReadonlyArray<Column<AttemptView>> = [
  { title: '#', width: 2, align: 'right', cell: a => String(a.epoch) },
  { title: 'NODE', width: 6, cell: a => shortPeer(a.node) },
  { title: 'STARTED', width: 8, cell: a => clock(a.startedAt ?? a.claimedAt) },
  { title: 'ENDED', width: 8, cell: a => clock(a.endedAt) },
  { title: 'EXIT', width: 4, align: 'right', cell: a => a.exitCode === undefined ? '-' : String(a.exitCode) },
  { title: 'SIGNAL', width: 7, drop: 1, cell: a => a.signal ?? '-' },
  { title: 'FAIL', width: 0, flex: true, cell: a => a.failReason ?? (a.lost === true ? 'lost' : '-') },
  { title: 'PEAK MEM', width: 8, align: 'right', cell: a => memory(a.peakRssKb) },
  { title: 'CPU', width: 7, drop: 0, align: 'right', cell: a => a.cpuMs === undefined ? '-' : formatDuration(a.cpuMs) }
]

/** A job's spec and times, for the detail view. */
export function specLines (job: JobView): string[] {
  const optional = (label: string, value: string | undefined): string => value === undefined || value === '' ? '' : `  ${label} ${value}`
  return [
    `cmd   ${shellQuote(job.cmd)}`,
    `cwd   ${job.cwd}`,
    `group ${job.group ?? '-'}  pri ${job.pri}  retries ${job.retries}  cores ${job.cores}  ttr ${formatDuration(job.ttrMs)}` +
      optional('timeout', job.timeoutMs === undefined ? undefined : formatDuration(job.timeoutMs)) +
      optional('tags', job.tags.join(',')),
    `after ${[...job.after, ...job.afterGroup.map(g => `group ${g}`)].join(', ') || '-'}` +
      optional('env', Object.entries(job.env).map(([k, v]) => `${k}=${v}`).join(' ')) +
      optional('out', job.out) + optional('key', job.key),
    `submitted ${clock(job.submittedAt)}  started ${clock(job.startedAt)}  ended ${clock(job.endedAt)}` +
      optional('exit', job.exitCode === undefined ? undefined : String(job.exitCode)) +
      optional('node', job.node === undefined ? undefined : shortPeer(job.node))
  ]
}

/** The active filters, e.g. `state=running group=build text="make"`. */
export function describeFilter (filter: JobFilter): string {
  return [
    filter.state === undefined ? '' : `state=${filter.state}`,
    filter.group === undefined ? '' : `group=${filter.group}`,
    filter.text === '' ? '' : `text="${filter.text}"`
  ].filter(Boolean).join(' ')
}

const BARS = '▁▂▃▄▅▆▇█'

/** The last `width` values as bars scaled to the largest of them. */
export function sparkline (values: readonly number[], width: number): string {
  const shown = values.slice(-Math.max(0, width))
  const max = Math.max(...shown, 0)
  return shown.map(v => BARS[max === 0 ? 0 : Math.round((v / max) * (BARS.length - 1))]).join('')
}

function rate (perSecond: number): string {
  return perSecond.toFixed(perSecond < 10 ? 2 : 1)
}

/** What the header shows: this node, the mesh, and the stats. */
export interface ClusterView {
  status?: NodeStatus
  stats?: StatsView
  peers?: PeerView[]
  /** Jobs finished per second, one sample per poll, oldest first. */
  history: number[]
}

/** The header's three lines. */
export function headerLines (info: ClusterView, width: number): Segment[][] {
  const { status, stats, peers } = info
  const up = peers?.filter(p => p.state !== 'unreachable').length
  const slots = stats?.nodes.reduce((sum, n) => ({ busy: sum.busy + n.running, total: sum.total + n.slots }), { busy: 0, total: 0 })
  const first: Segment[] = [
    { text: `cluster ${status?.clusterId ?? '?'}`, bold: true },
    { text: `  node ${status === undefined ? '?' : shortPeer(status.id)} ` },
    status === undefined ? { text: '?' } : status.draining ? { text: 'draining', color: 'yellow' } : { text: 'running', color: 'green' },
    { text: `  members ${up ?? '?'}/${peers?.length ?? '?'} up` },
    { text: `  slots ${slots?.busy ?? '?'}/${slots?.total ?? '?'} busy` }
  ]
  const counts: Segment[] = JOB_STATES.flatMap((state, i) => [
    { text: `${i === 0 ? '' : '  '}${state} ` },
    { text: String(stats?.states[state] ?? '?'), color: STATE_COLORS[state], bold: true }
  ])
  const label = `jobs/s ${stats === undefined ? '?' : rate(stats.throughput)} `
  const spark: Segment[] = [{ text: label }, { text: sparkline(info.history, width - label.length), color: 'cyan' }]
  return [first, counts, spark]
}

export function plain (segments: readonly Segment[]): string {
  return segments.map(s => s.text).join('')
}

/** `12:03:04` in local time (or `-`). */
function clock (iso: string | undefined): string {
  if (iso === undefined) return '-'
  const date = new Date(iso)
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map(n => String(n).padStart(2, '0')).join(':')
}

function memory (kb: number | undefined): string {
  if (kb === undefined) return '-'
  if (kb < 1024) return `${kb}K`
  return kb < 1024 * 1024 ? `${(kb / 1024).toFixed(1)}M` : `${(kb / 1024 / 1024).toFixed(2)}G`
}
