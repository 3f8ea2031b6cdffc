/** The markdown form of a fault-suite report. */
import { scenarios } from './scenarios.mjs'

const cell = text => String(text).replaceAll('|', '\\|').replaceAll('\n', ' ')

export function renderMarkdown (report) {
  const lines = [
    '# meshq fault suite report',
    '',
    `Started ${report.started}, seed ${report.seed}, ${report.durationMs / 1000} s of faults per scenario, ${report.nodes} nodes.`,
    '',
    '| scenario | result | acknowledged / submitted | lost | unexpected | duplicate runs | overlaps (connected / across partition) | ledgers agree | settled after healing | figures |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |'
  ]
  for (const r of report.results) {
    const figures = Object.entries(r.figures ?? {}).filter(([k]) => k !== 'settleMs').map(([k, v]) => `${k}: ${v}`).join('; ')
    lines.push(`| ${r.scenario} | ${r.ok ? 'pass' : 'FAIL'} | ${r.acknowledged ?? '-'} / ${r.submitted ?? '-'} | ${r.lost ?? '-'} | ${r.unexpected ?? '-'} | ${r.duplicateRuns ?? '-'} | ` +
      `${r.overlapsConnected ?? '-'} / ${r.overlapsAcrossPartition ?? '-'} | ${r.ledgersAgree == null ? '-' : r.ledgersAgree ? 'yes' : 'no'} | ` +
      `${r.figures?.settleMs != null ? `${(r.figures.settleMs / 1000).toFixed(1)} s` : '-'} | ${cell(figures)} |`)
  }
  lines.push('', '## Details', '')
  for (const r of report.results) {
    lines.push(`### ${r.scenario}`, '', scenarios.find(s => s.name === r.scenario)?.about ?? '', '')
    for (const c of r.checks ?? []) lines.push(`- ${c.ok ? 'ok' : 'FAILED'}: ${c.name}${c.detail ? ` (${c.detail})` : ''}`)
    for (const f of r.failures ?? []) lines.push(`- failure: ${f}`)
    for (const l of r.lostDetails ?? []) lines.push(`- lost ${l.id}: ${l.state}${l.reason != null ? ` (${l.reason})` : ''}; ${l.attempts.join('; ') || 'no attempts'}`)
    for (const o of r.overlaps ?? []) lines.push(`- overlap of ${o.job} for ${o.ms} ms: ${o.runs.join(' / ')}${o.acrossPartition ? ` (across a partition: ${o.why})` : ''}`)
    if (r.runs != null) lines.push(`- ${r.runs} runs (${r.interruptedRuns} interrupted), ${r.rerunJobs} jobs ran more than once, ${r.unacknowledgedRan} unacknowledged submits ran`)
    lines.push('')
  }
  return lines.join('\n')
}
