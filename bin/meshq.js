#!/usr/bin/env node
// Checked before anything else loads: on an older Node the dependencies fail with obscure errors.
const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  process.stderr.write(`meshq: needs Node.js 22 or later, and this is ${process.version} (see docs/operations.md#install)\n`)
  process.exit(1)
}
await import('../dist/cli/main.js')
