// Where a heap snapshot's memory goes (docs/scale.md, "Memory per queued job"):
//   node bench/heap-owners.js AFTER.heapsnapshot [BEFORE.heapsnapshot]
// prints (1) the growth of self size by class against BEFORE, (2) the retained size of each field
// of the node's big owners (the job table, the ledger, ...) and (3) what the objects retained by
// a few fields consist of, by class. Retained sizes come from a dominator tree (Cooper, Harvey,
// Kennedy), weak edges left out.
import { readFileSync } from 'node:fs'

const OWNERS = ['JobTable', 'Ledger', 'NodeEngine', 'JobLinks', 'JobEventLog', 'FactIntake', 'Claims', 'Scheduler']
const DETAILED = [['JobTable', 'entries'], ['NodeEngine', 'events'], ['JobLinks', 'members']]

function load (file) {
  const s = JSON.parse(readFileSync(file, 'utf8'))
  const { node_fields: nf, edge_fields: ef, node_types: [nodeTypes], edge_types: [edgeTypes] } = s.snapshot.meta
  const [NF, EF] = [nf.length, ef.length]
  const at = name => nf.indexOf(name)
  const N = s.nodes.length / NF
  const first = new Uint32Array(N + 1)
  for (let i = 0, e = 0; i < N; i++) { first[i] = e; e += s.nodes[i * NF + at('edge_count')] }
  first[N] = s.edges.length / EF
  return {
    N,
    type: i => nodeTypes[s.nodes[i * NF + at('type')]],
    name: i => s.strings[s.nodes[i * NF + at('name')]],
    size: i => s.nodes[i * NF + at('self_size')],
    * out (i) {
      for (let e = first[i]; e < first[i + 1]; e++) {
        const type = edgeTypes[s.edges[e * EF]]
        const raw = s.edges[e * EF + 1]
        yield { type, name: type === 'element' || type === 'hidden' ? raw : s.strings[raw], to: s.edges[e * EF + 2] / NF }
      }
    }
  }
}

function classOf (g, i) {
  const t = g.type(i)
  if (t === 'object' || t === 'closure' || t === 'native') return `${t}:${g.name(i)}`
  if (t.endsWith('string')) return '(string)'
  if (t === 'array' || t === 'hidden' || t === 'code') return `${t}:${g.name(i).slice(0, 40)}`
  return t
}

function byClass (g, nodes) {
  const m = new Map()
  for (const i of nodes) { const k = classOf(g, i); const v = m.get(k) ?? [0, 0]; v[0]++; v[1] += g.size(i); m.set(k, v) }
  return m
}

const range = n => Array.from({ length: n }, (_, i) => i)

function dominators (g) {
  const order = new Int32Array(g.N).fill(-1)
  const post = []
  const preds = Array.from({ length: g.N }, () => [])
  const stack = [[0, g.out(0)]]
  order[0] = -2
  while (stack.length > 0) {
    const [node, edges] = stack[stack.length - 1]
    const next = edges.next()
    if (next.done) { order[node] = post.length; post.push(node); stack.pop(); continue }
    if (next.value.type === 'weak') continue
    preds[next.value.to].push(node)
    if (order[next.value.to] === -1) { order[next.value.to] = -2; stack.push([next.value.to, g.out(next.value.to)]) }
  }
  const idom = new Int32Array(g.N).fill(-1)
  idom[0] = 0
  const intersect = (a, b) => {
    while (a !== b) { while (order[a] < order[b]) a = idom[a]; while (order[b] < order[a]) b = idom[b] }
    return a
  }
  for (let changed = true; changed;) {
    changed = false
    for (let k = post.length - 2; k >= 0; k--) {
      const b = post[k]
      let dom = -1
      for (const p of preds[b]) if (idom[p] !== -1) dom = dom === -1 ? p : intersect(p, dom)
      if (dom !== -1 && idom[b] !== dom) { idom[b] = dom; changed = true }
    }
  }
  const retained = new Float64Array(g.N)
  for (const b of post) { retained[b] += g.size(b); if (b !== 0) retained[idom[b]] += retained[b] }
  return { idom, retained }
}

const [afterFile, beforeFile] = process.argv.slice(2)
const g = load(afterFile)
const after = byClass(g, range(g.N))
const before = beforeFile == null ? new Map() : (b => byClass(b, range(b.N)))(load(beforeFile))
console.log('growth of self size by class: count, bytes')
const growth = [...after].map(([k, [c, sz]]) => [k, c - (before.get(k)?.[0] ?? 0), sz - (before.get(k)?.[1] ?? 0)])
for (const [k, c, sz] of growth.sort((a, b) => b[2] - a[2]).slice(0, 25)) console.log(`  ${k.padEnd(50)} ${String(c).padStart(9)} ${String(sz).padStart(12)}`)

const { idom, retained } = dominators(g)
const field = (cls, name) => {
  for (let i = 0; i < g.N; i++) if (g.type(i) === 'object' && g.name(i) === cls) for (const e of g.out(i)) if (e.name === name) return e.to
}
console.log('retained size by owner and field (over 100 kB)')
for (let i = 0; i < g.N; i++) {
  if (g.type(i) !== 'object' || !OWNERS.includes(g.name(i))) continue
  for (const e of g.out(i)) if (retained[e.to] > 100_000) console.log(`  ${g.name(i)}.${e.name} ${retained[e.to]}`)
}
let docs = 0
for (let i = 0; i < g.N; i++) if (g.type(i) === 'object' && g.name(i) === 'DocHandle') for (const e of g.out(i)) if (e.name === 'doc') docs += retained[e.to]
console.log(`  DocHandle.doc (all documents) ${docs}`)

const children = new Map()
for (let i = 1; i < g.N; i++) if (idom[i] >= 0) { const list = children.get(idom[i]) ?? []; list.push(i); children.set(idom[i], list) }
for (const [cls, name] of DETAILED) {
  const root = field(cls, name)
  if (root == null) continue
  const nodes = []
  for (const stack = [root]; stack.length > 0;) { const i = stack.pop(); nodes.push(i); stack.push(...(children.get(i) ?? [])) }
  console.log(`${cls}.${name}: retained ${retained[root]}, by class:`)
  for (const [k, [c, sz]] of [...byClass(g, nodes)].sort((a, b) => b[1][1] - a[1][1]).slice(0, 10)) console.log(`  ${k.padEnd(50)} ${String(c).padStart(9)} ${String(sz).padStart(12)}`)
}
