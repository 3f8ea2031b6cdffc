/**
 * The dashboard: the header, one view (jobs, detail, peers, help or the submit form) and the
 * status line, sized to the terminal. Keys go through the pure `handleKey`; effects to `useActions`.
 */
import { Box, useApp, useInput, useWindowSize } from 'ink'
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react'
import { Confirm } from './components/Confirm.js'
import { Header, HEADER_LINES } from './components/Header.js'
import { HelpView } from './components/HelpView.js'
import { JobDetail } from './components/JobDetail.js'
import { JobsTable } from './components/JobsTable.js'
import { PeersView } from './components/PeersView.js'
import { StatusLine } from './components/StatusLine.js'
import { SubmitForm } from './components/SubmitForm.js'
import { peerRows } from './format.js'
import type { FrameLog } from './frames.js'
import { useActions, useClusterInfo, useFullJob, useJobsStore, useLogTail } from './hooks.js'
import { handleKey, INITIAL_UI, keyPresses, selectedIndex, type UiState } from './keys.js'
import type { JobsFeed, TopClient } from './live.js'
import { scrollTop } from './store.js'

export interface AppProps {
  client: TopClient
  /** Where submitted jobs run. */
  cwd: string
  /** Frame timing (`MESHQ_TOP_FRAME_LOG`), if asked for. */
  frames?: FrameLog
  /** The jobs, if already being loaded (else the dashboard starts loading them). */
  feed?: JobsFeed
}

/** The table's title and header lines. */
const TABLE_CHROME = 2
const RUNNING = { text: '', state: 'running' } as const

export function App ({ client, cwd, frames, feed }: AppProps): React.JSX.Element {
  frames?.rendering()
  useLayoutEffect(() => frames?.committed())
  const { exit } = useApp()
  const { columns: width, rows } = useWindowSize()
  // The header's first poll goes before the list of every job, which keeps the node busy.
  const info = useClusterInfo(client)
  const jobs = useJobsStore(client, feed)
  const actions = useActions(client, cwd, jobs.store)
  const now = useNow(1000)
  const [ui, setUi] = useState<UiState>(INITIAL_UI)
  // Keys may come faster than renders: each one works on the state the previous one left.
  const latest = useRef(ui)

  // One line is left free: a frame as tall as the terminal would scroll it.
  const body = Math.max(TABLE_CHROME + 1, rows - 1 - HEADER_LINES - 1)
  const page = body - TABLE_CHROME
  // Rendered from the store as of `version`: events in between show at the next batch.
  // The store changes in place, so `version` (which the lists do not read) is what says they changed.
  // eslint-disable-next-line react-hooks/exhaustive-deps -- see above
  const list = useMemo(() => jobs.store.list(ui.filter), [jobs.store, jobs.version, ui.filter])
  // eslint-disable-next-line react-hooks/exhaustive-deps -- see above
  const runningJobs = useMemo(() => ui.view === 'peers' ? jobs.store.list(RUNNING) : [], [jobs.store, jobs.version, ui.view])
  const peers = peerRows(info.peers ?? [], runningJobs)
  const detailId = ui.view === 'detail' ? ui.detail?.id : undefined
  const current = detailId === undefined ? undefined : jobs.store.get(detailId)
  const detail = current ?? ui.detail
  const full = useFullJob(client, detailId, current)
  const log = useLogTail(client, detailId, ui.stream, `${detail?.tries}:${detail?.state}`)

  useInput((input, key) => {
    const ctx = { jobs: list, peers: peers.map(row => row.peer), page, paused: actions.paused }
    for (const [char, press] of keyPresses(input, key)) {
      const { state, effect } = handleKey(latest.current, char, press, ctx)
      latest.current = state
      if (effect?.type === 'quit') exit()
      else if (effect !== undefined) actions.run(effect)
    }
    setUi(latest.current)
  })

  const selected = selectedIndex(ui, list)
  const views: Record<UiState['view'], () => React.ReactNode> = {
    jobs: () => (
      <JobsTable
        jobs={list} total={jobs.store.size} filter={ui.filter} selected={selected} top={scrollTop(ui.top, selected, page, list.length)}
        rows={page} width={width} now={now} loaded={jobs.version > 0} complete={jobs.store.complete}
      />
    ),
    detail: () => detail !== undefined && (
      <JobDetail
        row={detail} full={full} removed={current === undefined} log={log} stream={ui.stream} width={width} height={body} now={now}
      />
    ),
    peers: () => <PeersView rows={peers} selected={Math.min(ui.peer, peers.length - 1)} width={width} now={now} />,
    help: () => <HelpView width={width} />
  }
  return (
    <Box flexDirection='column' width={width} height={rows - 1} overflow='hidden'>
      <Header info={info} width={width} />
      <Box flexDirection='column' height={body} overflow='hidden'>
        {ui.form !== undefined ? <SubmitForm form={ui.form} /> : views[ui.view]()}
      </Box>
      {ui.confirm !== undefined
        ? <Confirm question={ui.confirm.question} />
        : <StatusLine prompt={prompt(ui)} problem={problem(jobs.error ?? info.error, jobs.version)} notice={actions.notice} />}
    </Box>
  )
}

function prompt (ui: UiState): { label: string, value: string } | undefined {
  if (ui.prompt === 'text') return { label: '/ filter (Enter keeps, Esc clears)', value: ui.filter.text }
  if (ui.prompt === 'group') return { label: 'g group (Enter keeps, Esc clears)', value: ui.filter.group ?? '' }
  return undefined
}

/** What is wrong with the connection, if anything. */
function problem (error: Error | undefined, version: number): string | undefined {
  if (error?.name === 'NodeUnreachableError') return 'node unreachable, reconnecting…'
  if (error !== undefined) return `${error.message} (retrying)`
  return version === 0 ? 'connecting…' : undefined
}

/** The time, updated every `ms` (for ages and run times). */
function useNow (ms: number): number {
  const [now, setNow] = useState(() => Date.now())
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms)
    return () => clearInterval(timer)
  }, [ms])
  return now
}
