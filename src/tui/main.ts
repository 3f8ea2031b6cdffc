/**
 * `meshq top`: the dashboard in a terminal, or one snapshot when asked (`--once`, `--json`) or when
 * there is no terminal to draw in.
 */
import type { TopClient } from './live.js'
import { write } from '../stream-write.js'
import { FrameLog } from './frames.js'
import { boundHeap } from './heap.js'
import { JobsFeed } from './live.js'
import { DEFAULT_WIDTH, snapshot, snapshotText } from './snapshot.js'

/** Frames per second at most: events are batched anyway, this bounds the terminal's work. */
const MAX_FPS = 15

export interface RunTopOptions {
  client: TopClient
  /** Print one snapshot and exit instead of the interactive dashboard. */
  once: boolean
  json: boolean
}

/** The dashboard; resolves (optionally to an exit code) when the user quits. */
export type RunTop = (options: RunTopOptions) => Promise<number | undefined | void>

export const runTop: RunTop = async ({ client, once, json }) => {
  const { stdin, stdout } = process
  if (once || json || stdout.isTTY !== true || stdin.isTTY !== true) {
    const data = await snapshot(client)
    await write(stdout, json ? JSON.stringify(data, null, 2) + '\n' : snapshotText(data, stdout.columns ?? DEFAULT_WIDTH))
    return 0
  }
  const unbound = boundHeap()
  // The node gets to work on the jobs while Ink and React load (half a second).
  const feed = new JobsFeed(client)
  const frames = FrameLog.fromEnv()
  try {
    // React picks its build from NODE_ENV when it loads: its development build's checks took most
    // of each frame. Kept when set (NODE_ENV=development to debug the dashboard).
    process.env.NODE_ENV ??= 'production'
    const [{ render }, { createElement }, { App }] = await Promise.all([import('ink'), import('react'), import('./App.js')])
    const app = render(createElement(App, { client, cwd: process.cwd(), frames, feed }), {
      maxFps: MAX_FPS,
      onRender: frames === undefined ? undefined : ({ renderTime }) => frames.drawn(renderTime),
      alternateScreen: true,
      // we only get here with a terminal on both ends: draw live even where CI=true is set
      interactive: true,
      exitOnCtrlC: false
    })
    await app.waitUntilExit()
  } finally {
    feed.stop()
    frames?.close()
    unbound()
  }
  return 0
}
