/**
 * A real terminal for `meshq top`: a detached tmux session on the benchmark's own tmux server
 * (`tmux -L`), whose screen is read with capture-pane. Sessions are killed by `cleanupAll`.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { track } from './nodes.js'
import { fatal, waitFor } from './util.js'

const run = promisify(execFile)
const SERVER = `meshq-bench-${process.pid}`
const tmux = async (...args) => (await run('tmux', ['-L', SERVER, ...args])).stdout
const quote = text => `'${String(text).replace(/'/g, "'\\''")}'`

export async function tmuxVersion () {
  return await run('tmux', ['-V']).then(({ stdout }) => stdout.trim(), () => undefined)
}

/**
 * Runs `argv` in a new `columns`×`rows` terminal with `env`. The command is exec'd by the pane's
 * shell, so the pane's pid is the command's.
 */
export async function openTerminal ({ name, argv, env, columns, rows }) {
  const untrack = track(async () => { await tmux('kill-session', '-t', name).catch(() => {}) })
  await tmux('new-session', '-d', '-s', name, '-x', String(columns), '-y', String(rows),
    ...Object.entries(env).flatMap(([key, value]) => ['-e', `${key}=${value}`]),
    `exec ${argv.map(quote).join(' ')}`)
  const pid = Number((await tmux('display-message', '-p', '-t', name, '#{pane_pid}')).trim())
  const screen = async () => await tmux('capture-pane', '-p', '-t', name)
  const alive = async () => await tmux('has-session', '-t', name).then(() => true, () => false)
  return {
    pid,
    screen,
    /** Polls the screen until `pattern` matches it; returns the screen. */
    until: async (pattern, { timeout = 60_000, interval = 25 } = {}) => {
      let last = ''
      return await waitFor(async () => {
        if (!await alive()) throw fatal(`the terminal's command exited; the screen showed:\n${last}`)
        last = await screen()
        return pattern.test(last) && last
      }, { what: () => `${pattern} on the screen; it showed:\n${last}`, timeout, interval })
    },
    press: async (...keys) => { await tmux('send-keys', '-t', name, ...keys) },
    /** Waits until the command has exited (the session ends with it). */
    exited: async (timeout = 30_000) => { await waitFor(async () => !await alive(), { what: `${name} to exit`, timeout }) },
    close: async () => {
      await tmux('kill-session', '-t', name).catch(() => {})
      untrack()
    }
  }
}
