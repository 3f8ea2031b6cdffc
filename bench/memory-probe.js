// Preloaded into a node to measure its memory (docs/scale.md, "Memory per queued job"):
//   node --expose-gc --import ./bench/memory-probe.js dist/cli/main.js node ...
// Every 500 ms it writes process.memoryUsage(), the V8 heap spaces and the size of every
// WebAssembly memory (Automerge's is the largest) as JSON to $PROBE_OUT. Creating the file
// $PROBE_OUT.gc asks for two full collections first; if the file says `last`, last-resort ones,
// which also give V8's pooled pages back to the system.
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import v8 from 'node:v8'

const out = process.env.PROBE_OUT
const memories = []
const Instance = WebAssembly.Instance
WebAssembly.Instance = function (module, imports) {
  const instance = new Instance(module, imports)
  for (const value of Object.values(instance.exports)) if (value instanceof WebAssembly.Memory) memories.push(value)
  return instance
}
WebAssembly.Instance.prototype = Instance.prototype

function collect () {
  const request = out + '.gc'
  if (!existsSync(request)) return
  const lastResort = readFileSync(request, 'utf8').includes('last')
  unlinkSync(request)
  for (let i = 0; i < 2; i++) globalThis.gc?.(lastResort ? { type: 'major', execution: 'sync', flavor: 'last-resort' } : undefined)
}

setInterval(() => {
  collect()
  const usage = process.memoryUsage()
  usage.wasm = memories.map(m => m.buffer.byteLength)
  usage.spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map(s => [s.space_name, s.space_used_size]))
  writeFileSync(out, JSON.stringify(usage))
}, 500).unref()
