#!/usr/bin/env node
'use strict';
// Where the server's CPU time per connection goes, by component: `npm run bench:perf`.
// Instruction counts (callgrind) say what runs; this says what it costs in time, kernel included
// (cache misses, wake-ups, page faults). The servers run one at a time under the same load
// generator cell; `perf record -e cpu-clock` (a software clock: no hardware counters needed, so it
// works in a VM) samples the server process, all its threads, during the timed connections only.
//   --tls 1.2|1.3        (1.2)
//   --mode rr|resume|full  loadgen mode (rr: resume, request, reply, close_notify both ways)
//   --concurrency N      connections in flight (8)
//   --time S             seconds sampled per server (5)
//   --runs N             runs per server, alternating (3); the table shows medians
//   --only addon,c       contestants (addon, node, c)
//   --cert p256|rsa      (p256)
//   --top N              also list the N costliest symbols of each server
//   --call-graph MODE    record call chains too (perf's --call-graph, e.g. dwarf,16384), for `perf report
//                        -i bench/out/perf-<server>.data --children` afterwards
const path = require('path');
const { spawn, execFileSync } = require('child_process');
const setup = require('./lib/setup');
const { Server } = require('./lib/proc');
const { loadgen } = require('./lib/clients');

const argv = process.argv.slice(2);
const value = (f, d) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : d);
const opt = {
  tls: value('--tls', '1.2'),
  mode: value('--mode', 'rr'),
  concurrency: Number(value('--concurrency', 8)),
  seconds: Number(value('--time', 5)),
  runs: Number(value('--runs', 3)),
  only: value('--only', 'addon,c').split(','),
  cert: value('--cert', 'p256'),
  top: Number(value('--top', 0)),
  callGraph: value('--call-graph', ''),
};
const HZ = 4000;

const DIST = path.join(setup.ROOT, '..', 'dist', 'index.js');
const node = (script, mode) => (port, c) => [process.execPath, ['--perf-basic-prof', path.join(setup.ROOT, 'servers', script),
  '--port', String(port), '--cert', c.cert, '--key', c.key, '--mode', mode]];
const SERVERS = {
  addon: { label: 'this addon', cmd: node('addon.js', 'auto') },
  node: { label: 'node:tls', cmd: node('node-tls.js', 'tickets') },
  c: { label: 'C OpenSSL', cmd: (port, c) => [path.join(setup.BIN, 'c_server'), [String(port), c.cert, c.key]] },
};

// The component of one sample, from its DSO and symbol. Node links OpenSSL, V8 and libuv into one
// binary: there C++ namespaces tell V8 and node apart, and what is left in this workload is OpenSSL.
const MALLOC = /^(?:__libc_)?(?:malloc|free|cfree|calloc|realloc)|^_int_(?:malloc|free|realloc)|^malloc_|^unlink_chunk|^tcache|^sysmalloc/;
function component(dso, sym) {
  if (dso.startsWith('[kernel')) return 'kernel (syscalls, TCP, wake-ups, page faults)';
  if (/libssl|libcrypto/.test(dso)) return 'OpenSSL';
  if (dso.startsWith('libc.so')) {
    if (MALLOC.test(sym)) return 'libc: malloc/free';
    if (/^__mem(?:move|cpy|set)/.test(sym)) return 'libc: memcpy/memset';
    return 'libc: other';
  }
  if (dso.startsWith('[JIT]') || sym.startsWith('JS:') || sym.startsWith('Stub:') || sym.startsWith('BytecodeHandler:')) {
    return 'V8: JavaScript (JIT-compiled code)';
  }
  if (sym.startsWith('Builtins_')) return 'V8: builtins';
  if (dso === 'node' || dso.endsWith('/node')) {
    if (sym.startsWith('node::') || sym.startsWith('napi_') || sym.startsWith('v8impl::') || sym.startsWith('node_napi')) return 'node + N-API';
    if (sym.startsWith('uv_') || sym.startsWith('uv__')) return 'libuv';
    if (/v8::internal::(?:compiler|maglev|baseline)::|Compil/.test(sym)) return 'V8: optimizing compiler (warm-up)';
    if (/Heap|Scaveng|Mark|Sweep|Evacuat|GCTracer|heap::|ConcurrentMarking/.test(sym)) return 'V8: garbage collector';
    if (sym.includes('::')) return 'V8: runtime and API (objects, inline caches, calls in and out)';
    return 'OpenSSL';
  }
  if (dso.endsWith('.node')) return 'the server\'s own code';
  if (dso === 'c_server') return 'the server\'s own code';
  if (dso.startsWith('libstdc++')) return 'libstdc++';
  return 'other';
}

function profile(file) {
  const out = execFileSync('perf', ['report', '-i', file, '--stdio', '--no-children', '--sort', 'dso,sym', '-g', 'none', '-n',
    '--percent-limit', '0'], { maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const parts = {};
  const syms = {};
  for (const line of out.split('\n')) {
    const m = /^\s+[\d.]+%\s+(\d+)\s+(.+?)\s+\[[.k]\]\s+(.*?)\s*$/.exec(line); // a DSO may have spaces: "[JIT] tid 123"
    if (!m) continue;
    const [, n, dso, sym] = m;
    const c = component(dso, sym);
    parts[c] = (parts[c] || 0) + Number(n);
    syms[`${c}: ${sym}`] = (syms[`${c}: ${sym}`] || 0) + Number(n);
  }
  return { parts, syms };
}

async function measure(id, certs) {
  const [cmd, args] = SERVERS[id].cmd(0, certs[opt.cert]);
  const server = await new Server(cmd, args, { label: id }).start();
  try {
    // Warm-up: JIT, caches, allocator.
    await loadgen(server, { tls: opt.tls, mode: opt.mode, conns: 3000, seconds: 10, concurrency: opt.concurrency,
      request: opt.mode === 'rr' ? 100 : undefined });
    const file = path.join(setup.OUT, `perf-${id}.data`);
    let rec;
    const r = await loadgen(server, { tls: opt.tls, mode: opt.mode, conns: 1e6, seconds: opt.seconds,
      concurrency: opt.concurrency, request: opt.mode === 'rr' ? 100 : undefined,
      onPrimed() {
        rec = spawn('perf', ['record', ...(opt.callGraph ? ['--call-graph', opt.callGraph] : []), '-q', '-e', 'cpu-clock', '-F', String(HZ), '-o', file, '-p', String(server.pid)],
          { stdio: 'ignore' });
        execFileSync('sleep', ['0.2']); // perf attaches before the timed connections start
      } });
    rec.kill('SIGINT');
    await new Promise((res) => rec.on('exit', res));
    if (r.failed) throw new Error(`${id}: ${r.failed} connections failed`);
    const { parts, syms } = profile(file);
    const us = (n) => (n * 1e6) / HZ / r.connections;
    return { connections: r.connections, resumed: r.resumed, cpu: r.serverCpu * 1e6 / r.connections,
      parts: Object.fromEntries(Object.entries(parts).map(([k, n]) => [k, us(n)])),
      top: Object.entries(syms).sort((a, b) => b[1] - a[1]).slice(0, opt.top).map(([k, n]) => [k, us(n)]) };
  } finally {
    await server.stop();
  }
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)]; };

async function main() {
  setup.ensureTools({ needPerf: true }, (m) => process.stderr.write(`${m}\n`));
  setup.build();
  const certs = setup.certs();
  const ids = opt.only.filter((id) => SERVERS[id] && (id !== 'addon' || require('fs').existsSync(DIST)));
  const runs = Object.fromEntries(ids.map((id) => [id, []]));
  for (let i = 0; i < opt.runs; i++) {
    for (const id of i % 2 ? [...ids].reverse() : ids) {
      process.stderr.write(`run ${i + 1}/${opt.runs}: ${id}\n`);
      runs[id].push(await measure(id, certs));
    }
  }
  const comps = [...new Set(ids.flatMap((id) => runs[id].flatMap((r) => Object.keys(r.parts))))];
  const med = (id, f) => median(runs[id].map(f));
  const total = (id) => med(id, (r) => Object.values(r.parts).reduce((a, b) => a + b, 0));
  comps.sort((a, b) => med(ids[0], (r) => r.parts[b] || 0) - med(ids[0], (r) => r.parts[a] || 0));
  console.log(`TLS ${opt.tls} ${opt.cert} --mode ${opt.mode}, ${opt.concurrency} in flight: server CPU µs per connection ` +
    `(perf cpu-clock samples at ${HZ} Hz, medians of ${opt.runs} runs of ${opt.seconds} s)`);
  console.log(`| component | ${ids.map((id) => SERVERS[id].label).join(' | ')} |${ids.length > 1 ? ` ${SERVERS[ids[0]].label} − ${SERVERS[ids.at(-1)].label} |` : ''}`);
  console.log(`|---|${ids.map(() => '---:').join('|')}|${ids.length > 1 ? '---:|' : ''}`);
  for (const c of comps) {
    const v = ids.map((id) => med(id, (r) => r.parts[c] || 0));
    console.log(`| ${c} | ${v.map((x) => x.toFixed(1)).join(' | ')} |${ids.length > 1 ? ` ${(v[0] - v.at(-1) >= 0 ? '+' : '')}${(v[0] - v.at(-1)).toFixed(1)} |` : ''}`);
  }
  const t = ids.map(total);
  console.log(`| **total sampled** | ${t.map((x) => `**${x.toFixed(1)}**`).join(' | ')} |${ids.length > 1 ? ` **+${(t[0] - t.at(-1)).toFixed(1)}** (${(t[0] / t.at(-1)).toFixed(2)}×) |` : ''}`);
  console.log(`| /proc utime+stime | ${ids.map((id) => med(id, (r) => r.cpu).toFixed(1)).join(' | ')} |${ids.length > 1 ? ' |' : ''}`);
  for (const id of ids) {
    const r = runs[id];
    console.log(`${SERVERS[id].label}: ${r.map((x) => `${x.connections} conns (${x.resumed} resumed)`).join(', ')}`);
    if (opt.top) for (const [k, v] of r[r.length - 1].top) console.log(`  ${v.toFixed(2).padStart(7)}  ${k}`);
  }
}

main().catch((e) => { console.error(e.stack || e); process.exit(1); });
