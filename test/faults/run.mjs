#!/usr/bin/env node
/**
 * `npm run test:faults -- [--scenario a,b|all] [--seed N] [--duration 30s] [--nodes 5] [--report PATH] [--keep]`
 * Runs fault scenarios against real nodes in network namespaces (root only) and checks that no
 * acknowledged job is lost. Exit code: 0 all passed, 1 a scenario failed, 2 bad usage.
 */
import { writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { active, runScenario } from './harness.mjs'
import { unsupportedReason } from './net.mjs'
import { scenarioNames, scenarios } from './scenarios.mjs'
import { renderMarkdown } from './report.mjs'
import { summary } from './summary.mjs'

const USAGE = `usage: npm run test:faults -- [options]
  --scenario LIST   comma-separated scenario names, or all (default: all)
  --seed N          seed of every random choice (default 1)
  --duration DUR    how long each scenario's faults and workload last, e.g. 30s, 2m (default 30s)
  --nodes N         nodes per scenario, where the scenario does not fix it (default 5)
  --report PATH     write PATH.json and PATH.md (default: no report files)
  --keep            keep every run's directory (node logs, homes), not only failed ones
  --list            list the scenarios and exit
scenarios: ${scenarioNames().join(', ')}`

class UsageError extends Error {
  name = 'UsageError'
}

function duration (text) {
  const m = /^(\d+)(ms|s|m)$/.exec(text)
  if (m == null) throw new UsageError(`bad duration '${text}' (expected e.g. 500ms, 30s, 5m)`)
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2]]
}

function integer (text, name) {
  if (!/^\d+$/.test(text)) throw new UsageError(`--${name} needs a non-negative integer, got '${text}'`)
  return Number(text)
}

function parse (argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: 'string', default: 'all' },
      seed: { type: 'string', default: '1' },
      duration: { type: 'string', default: '30s' },
      nodes: { type: 'string', default: '5' },
      report: { type: 'string' },
      keep: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  const names = values.scenario === 'all' ? scenarioNames() : values.scenario.split(',').filter(s => s !== '')
  const unknown = names.filter(n => !scenarioNames().includes(n))
  if (unknown.length > 0) throw new UsageError(`unknown scenario ${unknown.join(', ')} (see --list)`)
  const size = integer(values.nodes, 'nodes')
  if (size < 3 || size > 9) throw new UsageError('--nodes must be between 3 and 9')
  return { ...values, names, seed: integer(values.seed, 'seed'), durationMs: duration(values.duration), size }
}

async function main () {
  let options
  try {
    options = parse(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`test:faults: ${err.message}\n`)
    return 2
  }
  if (options.help) { process.stdout.write(USAGE + '\n'); return 0 }
  if (options.list) {
    for (const s of scenarios) process.stdout.write(`${s.name.padEnd(28)} ${s.about}\n`)
    return 0
  }
  const unsupported = unsupportedReason()
  if (unsupported != null) {
    process.stderr.write(`test:faults: ${unsupported}\n`)
    return 1
  }
  const say = line => process.stdout.write(line + '\n')
  const started = new Date()
  const results = []
  for (const name of options.names) {
    const scenario = scenarios.find(s => s.name === name)
    const result = await runScenario(scenario, { seed: options.seed, durationMs: options.durationMs, size: options.size, keep: options.keep, say })
    results.push(result)
    say(`${result.ok ? 'PASS' : 'FAIL'} ${name}: ${summary(result)}${result.ok ? '' : `\n  ${result.failures.join('\n  ')}\n  logs and homes kept in ${result.dir}`}`)
    for (const lost of result.lostDetails ?? []) say(`  lost ${lost.id}: ${lost.state}${lost.reason != null ? ` (${lost.reason})` : ''}; ${lost.attempts.join('; ') || 'no attempts'}`)
    // written after every scenario, so that a long run interrupted midway still leaves its report
    if (options.report != null) await writeReport(options.report, { started: started.toISOString(), seed: options.seed, durationMs: options.durationMs, nodes: options.size, results })
  }
  if (options.report != null) say(`report: ${options.report.replace(/\.(json|md)$/, '')}.json and .md`)
  const failed = results.filter(r => !r.ok).length
  say(`${results.length - failed} of ${results.length} scenarios passed`)
  return failed === 0 ? 0 : 1
}

async function writeReport (path, report) {
  const base = path.replace(/\.(json|md)$/, '')
  await writeFile(`${base}.json`, JSON.stringify(report, null, 2) + '\n')
  await writeFile(`${base}.md`, renderMarkdown(report))
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    process.stderr.write(`test:faults: ${signal}, cleaning up\n`)
    void Promise.all([...active].map(async run => await run.cleanup())).finally(() => process.exit(130))
  })
}

// exit rather than wait for stray handles (a node that would not die, a timer of a failed wait)
process.exit(await main())
