/** One line about a scenario's result. */
export function summary (r) {
  if (r.acknowledged == null) return r.failures.join('; ')
  return `${r.acknowledged}/${r.submitted} acknowledged, ${r.completed} completed, ${r.lost} lost, ${r.unexpected} unexpected, ` +
    `${r.duplicateRuns} duplicate runs, overlaps ${r.overlapsConnected} connected / ${r.overlapsAcrossPartition} across a partition, ` +
    `ledgers ${r.ledgersAgree ? 'agree' : 'DISAGREE'}, settled ${r.figures.settleMs} ms after healing`
}
