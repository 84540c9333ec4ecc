#!/usr/bin/env node
'use strict';
// Benchmark harness: `npm run bench` / `node bench/run.js [flags]`.
//   --quick          small version, under two minutes
//   --runs N         runs per cell (median reported); default 5, quick 1
//   --time S         seconds per handshake run; default 2, quick 1
//   --only a,b       contestants by id (addon, node, node-sid, c; multi-core:
//                    addon, addon-t1, addon-t2, node-cluster, node-pk-cluster,
//                    node-sid-cluster, addon-cluster, c)
//   --no-callgrind   skip the instruction counts
//   --callgrind-only the instruction counts alone (no timed cells, no memory)
//   --callgrind-addon  count the addon under callgrind in --quick too (slow)
//   --callgrind-node also count node:tls under callgrind (slow)
//   --publish        also copy the JSON written (and chart.svg) to bench/results/
//   --sequential     single-process cells one contestant after the other (default: interleaved,
//                    every run of a cell measures each contestant once, in a rotated order)
//   --multicore      the multi-core section only (threads, cluster, C server;
//                    see MC_CONTESTANTS); the full run includes it, --quick not
//   --no-multicore   leave the multi-core section out of the full run
//   --mc-n N         threads / cluster workers in the multi-core section (2)
//   --store          the store section only (sessions from Redis vs the
//                    internal cache vs a full handshake, and node:tls over
//                    Redis; see lib/store.js); the full run includes it, --quick not
//   --no-store       leave the store section out of the full run
//   --store-conns N  connections per run of a store "L2" cell (5000): each one
//                    a distinct session primed beforehand
// --quick uses the P-256 certificate only and smaller memory/bulk sizes.
// Writes bench/out/results.json and bench/out/chart.svg (with --multicore:
// bench/out/multicore.json; with --store: bench/out/store.json); exits 1 when
// any cell fails its checks (e.g. a "resumed" cell that did not resume).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const setup = require('./lib/setup');
const { Server } = require('./lib/proc');
const { sTime, loadgen } = require('./lib/clients');
const { irPerConnection } = require('./lib/callgrind');
const { renderChart } = require('./chart');
const { runStore, storeTable, storeCells } = require('./lib/store');

// ---- options ---------------------------------------------------------------
const argv = process.argv.slice(2);
const flag = (f) => argv.includes(f);
const value = (f, d) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : d);
const quick = flag('--quick');
const mcOnly = flag('--multicore');
const storeOnly = flag('--store');
const callgrindOnly = flag('--callgrind-only');
const sectionOnly = mcOnly || storeOnly || callgrindOnly; // run only the named section(s)
const opt = {
  quick,
  runs: Number(value('--runs', quick ? 1 : 5)),
  seconds: Number(value('--time', quick ? 1 : 2)),
  concurrency: 8,
  bulkBytes: (quick ? 16 : 100) << 20,
  cacheSessions: quick ? 2000 : 10000,
  idleConns: quick ? 200 : 1000,
  callgrind: !flag('--no-callgrind'),
  callgrindOnly,
  // counted connections, after `callgrindWarm` uncounted ones of the same kind (V8's JIT, lazy init)
  callgrindN: Number(value('--callgrind-n', quick ? 500 : 2000)),
  callgrindWarm: Number(value('--callgrind-warm', quick ? 1000 : 5000)),
  requestBytes: Number(value('--request', 100)),
  only: value('--only', '').split(',').filter(Boolean),
  publish: flag('--publish'),
  sequential: flag('--sequential'),
  singleCore: !sectionOnly,
  multicore: mcOnly || (!sectionOnly && !quick && !flag('--no-multicore')),
  mcN: Number(value('--mc-n', 2)),
  store: storeOnly || (!sectionOnly && !quick && !flag('--no-store')),
  storeConns: Number(value('--store-conns', 5000)),
};
if (!Number.isInteger(opt.storeConns) || opt.storeConns < 1) throw new Error('--store-conns takes a positive integer');
if (!Number.isInteger(opt.mcN) || opt.mcN < 2) throw new Error('--mc-n takes an integer >= 2');

// ---- contestants -------------------------------------------------------------
const NODE = process.execPath;
const ROOT = setup.ROOT;
const DIST = path.join(ROOT, '..', 'dist', 'index.js');
const nodeServer = (script, mode) => (port, c) =>
  [NODE, ['--expose-gc', path.join(ROOT, 'servers', script), '--port', String(port), '--cert', c.cert, '--key', c.key, '--mode', mode]];

// The addon is usable when dist/ loads in a fresh node (its native part may be
// mid-rebuild): returns true or the reason to skip it.
function addonAvailable() {
  if (!fs.existsSync(DIST)) return 'dist/index.js not built (npm run build)';
  try {
    execFileSync(NODE, ['-e', `require(${JSON.stringify(DIST)})`], { stdio: 'pipe', timeout: 20000 });
    return true;
  } catch (e) {
    return `dist/ does not load: ${String(e.stderr || e.message).split('\n').find((l) => /Error/.test(l)) || e.message}`;
  }
}

const CONTESTANTS = [
  { id: 'addon', label: 'addon (SSL_CTX cache)', cmd: nodeServer('addon.js', 'auto'),
    gc: true, available: addonAvailable },
  { id: 'node', label: 'node:tls defaults (tickets)', cmd: nodeServer('node-tls.js', 'tickets'), gc: true },
  // Node's session events never resume TLS 1.3 (the ticket identity is not
  // the id handed to newSession): expected, reported, not a bench failure.
  { id: 'node-sid', label: 'node:tls session-ID Map', cmd: nodeServer('node-tls.js', 'sessionid'), gc: true,
    noResume: { '1.3': 'node:tls session events do not resume TLS 1.3' } },
  { id: 'c', label: 'C OpenSSL server', cmd: (port, c) => [path.join(setup.BIN, 'c_server'), [String(port), c.cert, c.key]] },
];

// ---- multi-core contestants ---------------------------------------------------
// N threads or N cluster workers on one port. Server CPU = utime+stime of every
// process of the server: one process for threads (all its threads), the
// primary plus each worker under cluster (cluster.js prints their PIDs).
const N = opt.mcN;
const threadsServer = (threads) => (port, c) =>
  [NODE, [path.join(ROOT, 'servers', 'addon-threads.js'), '--port', String(port), '--cert', c.cert, '--key', c.key, '--threads', String(threads)]];
const clusterServer = (script, mode) => (port, c) =>
  [NODE, ['--expose-gc', path.join(ROOT, 'servers', 'cluster.js'), '--workers', String(N), '--server', script,
    '--port', String(port), '--cert', c.cert, '--key', c.key, '--mode', mode]];
// Expected partial resumption: each process has its own cache or ticket keys,
// and cluster decides which worker a connection reaches.
const perProcess = (what) => ({ '1.2': `${what} per process: resumes only on the worker that issued the session (~1/${N})`,
  '1.3': `${what} per process: resumes only on the worker that issued the session (~1/${N})` });
const MC_CONTESTANTS = [
  { id: 'addon', label: 'addon createServer (no threads)', cmd: nodeServer('addon.js', 'auto'), available: addonAvailable },
  { id: 'addon-t1', label: 'addon threads: 1', cmd: threadsServer(1), available: addonAvailable },
  { id: `addon-t${N}`, label: `addon threads: ${N} (one cache)`, cmd: threadsServer(N), available: addonAvailable },
  // node:tls defaults under cluster: the primary hands every worker the first
  // worker's ticket keys, so tickets resume on any worker.
  { id: 'node-cluster', label: `node:tls defaults, cluster ${N}`, cmd: clusterServer('node-tls.js', 'tickets') },
  { id: 'node-pk-cluster', label: `node:tls own keys, cluster ${N}`, cmd: clusterServer('node-tls.js', 'tickets-pp'),
    partialResume: perProcess('ticket keys') },
  { id: 'node-sid-cluster', label: `node:tls sid Map, cluster ${N}`, cmd: clusterServer('node-tls.js', 'sessionid'),
    noResume: { '1.3': 'node:tls session events do not resume TLS 1.3' }, partialResume: { '1.2': perProcess('session Map')['1.2'] } },
  { id: 'addon-cluster', label: `addon, cluster ${N}`, cmd: clusterServer('addon.js', 'auto'), available: addonAvailable,
    partialResume: perProcess('SSL_CTX cache') },
  { id: 'c', label: 'C server (1 process, 1 thread)', cmd: CONTESTANTS.find((c) => c.id === 'c').cmd },
];

// ---- cells -------------------------------------------------------------------
const CELLS = [];
const CERTS = quick ? ['p256'] : ['rsa', 'p256'];
for (const cert of CERTS) {
  for (const tls of ['1.2', '1.3']) {
    for (const resumed of [false, true]) {
      const client = tls === '1.2' ? 's_time' : 'loadgen';
      CELLS.push({ id: `tls${tls.replace('.', '')}-${cert}-${resumed ? 'resumed' : 'full'}`, group: 'handshake',
        title: `TLS${tls} ${cert === 'rsa' ? 'RSA' : 'P-256'} ${resumed ? 'resumed' : 'full'}, 1 conn (${client})`,
        cert, tls, resumed, client, concurrency: 1, unit: 'conn/s' });
    }
  }
}
for (const [tls, resumed] of [['1.2', true], ['1.3', true], ['1.3', false]]) {
  CELLS.push({ id: `c${opt.concurrency}-tls${tls.replace('.', '')}-${resumed ? 'resumed' : 'full'}`, group: 'concurrency',
    title: `TLS${tls} P-256 ${resumed ? 'resumed' : 'full'}, ${opt.concurrency} in flight (loadgen)`,
    cert: 'p256', tls, resumed, client: 'loadgen', concurrency: opt.concurrency, unit: 'conn/s' });
}
// Request/reply/close: what an HTTP-style connection does. Resume, one request of --request bytes,
// the whole reply (the echo), close_notify both ways (loadgen --mode rr checks the server's).
for (const cert of CERTS) {
  for (const tls of ['1.2', '1.3']) {
    CELLS.push({ id: `rr-tls${tls.replace('.', '')}-${cert}`, group: 'rr', mode: 'rr',
      title: `TLS${tls} ${cert === 'rsa' ? 'RSA' : 'P-256'} resumed req/reply/close, 1 conn`,
      cert, tls, resumed: true, client: 'loadgen', concurrency: 1, unit: 'conn/s' });
  }
}
for (const tls of ['1.2', '1.3']) {
  CELLS.push({ id: `rr-c${opt.concurrency}-tls${tls.replace('.', '')}`, group: 'rr', mode: 'rr',
    title: `TLS${tls} P-256 resumed req/reply/close, ${opt.concurrency} in flight`,
    cert: 'p256', tls, resumed: true, client: 'loadgen', concurrency: opt.concurrency, unit: 'conn/s' });
}
CELLS.push({ id: 'bulk-tls13', group: 'bulk', title: `TLS1.3 P-256 echo ${opt.bulkBytes >> 20} MiB (loadgen)`,
  cert: 'p256', tls: '1.3', resumed: false, client: 'bulk', concurrency: 1, unit: 'MB/s' });

// Multi-core cells: 8 connections in flight, P-256. `resume`: each client
// thread offers the newest session it got; `resume-any`: every connection
// offers the newest session any connection got (from whichever worker).
const MC_CELLS = [];
for (const tls of ['1.2', '1.3']) {
  for (const resumed of [false, true]) {
    MC_CELLS.push({ id: `mc-tls${tls.replace('.', '')}-${resumed ? 'resumed' : 'full'}`, group: 'multicore',
      title: `TLS${tls} ${resumed ? 'resumed' : 'full'}, ${opt.concurrency} in flight`,
      cert: 'p256', tls, resumed, client: 'loadgen', mode: resumed ? 'resume' : 'full', concurrency: opt.concurrency, unit: 'conn/s' });
  }
}
for (const tls of ['1.2', '1.3']) {
  MC_CELLS.push({ id: `mc-any-tls${tls.replace('.', '')}`, group: 'multicore',
    title: `TLS${tls} resume-any (rate), ${opt.concurrency} in flight`,
    cert: 'p256', tls, resumed: true, client: 'loadgen', mode: 'resume-any', concurrency: opt.concurrency, unit: 'conn/s' });
}

// ---- progress and small helpers ------------------------------------------------
const tty = process.stderr.isTTY;
function progress(msg) {
  if (tty) process.stderr.write(`\r\x1b[K${msg}`);
  else process.stderr.write(`${msg}\n`);
}
const log = (msg) => { if (tty) process.stderr.write('\r\x1b[K'); process.stderr.write(`${msg}\n`); };
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const failures = [];
const fail = (msg) => { failures.push(msg); log(`FAIL: ${msg}`); };

// ---- one measured run ------------------------------------------------------------
async function measure(server, cell) {
  if (cell.client === 's_time') return sTime(server, { reuse: cell.resumed, seconds: Math.max(1, Math.round(opt.seconds)), tls: cell.tls });
  if (cell.client === 'bulk') return loadgen(server, { tls: cell.tls, mode: 'bulk', conns: 1, seconds: 120, bytes: opt.bulkBytes });
  return loadgen(server, { tls: cell.tls, mode: cell.mode || (cell.resumed ? 'resume' : 'full'), conns: 1000000,
    seconds: opt.seconds, concurrency: cell.concurrency, request: cell.mode === 'rr' ? opt.requestBytes : undefined });
}

// Checks one run; returns 'ok', 'unsupported', 'partial' (a contestant whose
// partial resumption is expected: per-process caches) or 'failed'.
function check(contestant, cell, r) {
  const where = `${contestant.id} / ${cell.id}`;
  if (!r.connections) { fail(`${where}: no connection completed`); return 'failed'; }
  if (r.failed) {
    fail(`${where}: ${r.failed} connections failed${r.unclean ? ` (${r.unclean} closed without the server's close_notify)` : ''}`);
    return 'failed';
  }
  if (cell.client === 'bulk' && r.bytes !== opt.bulkBytes) { fail(`${where}: echoed ${r.bytes} of ${opt.bulkBytes} bytes`); return 'failed'; }
  if (!cell.resumed) {
    if (r.resumed) { fail(`${where}: ${r.resumed} connections resumed in a full-handshake cell`); return 'failed'; }
    return 'ok';
  }
  const unsupported = contestant.noResume && contestant.noResume[cell.tls];
  if (r.resumed === r.connections) return 'ok';
  if (unsupported && r.resumed === 0) return 'unsupported';
  if (contestant.partialResume && contestant.partialResume[cell.tls]) return 'partial';
  fail(`${where}: only ${r.resumed}/${r.connections} connections resumed`);
  return 'failed';
}

function summarize(cell, runs) {
  const perOp = cell.unit === 'MB/s' ? (r) => r.bytes / 1048576 : (r) => r.connections;
  return {
    rate: median(runs.map((r) => perOp(r) / r.seconds)),
    // ms of CPU per handshake (per MB for bulk)
    serverMs: median(runs.map((r) => (r.serverCpu * 1000) / perOp(r))),
    clientMs: median(runs.map((r) => (r.clientCpu * 1000) / perOp(r))),
    connections: runs.reduce((a, r) => a + r.connections, 0),
    resumed: runs.reduce((a, r) => a + r.resumed, 0),
    // cores the server / the client kept busy on average (CPU s per wall s)
    serverCores: median(runs.map((r) => r.serverCpu / r.seconds)),
    clientCores: median(runs.map((r) => r.clientCpu / r.seconds)),
    ...(runs.every((r) => Number.isFinite(r.otherCpu)) ? { otherCores: median(runs.map((r) => r.otherCpu / r.seconds)) } : {}),
    // the harness's own child alone (a cluster's primary), ms per handshake
    ...(runs.every((r) => Number.isFinite(r.serverCpuMain)) ? { mainMs: median(runs.map((r) => (r.serverCpuMain * 1000) / perOp(r))) } : {}),
  };
}

// ---- memory: RSS per cached session and per idle connection -------------------------
// Cache cost = RSS growth over a second batch of full handshakes (each adds a
// session), after a first equal batch: the first one also pays one-time growth
// (V8 young generation, malloc arenas) that is not the cache's.
async function memory(contestant, cert) {
  const fresh = async () => {
    const [cmd, args] = contestant.cmd(0, cert);
    const s = await new Server(cmd, args, { label: contestant.id }).start();
    await loadgen(s, { tls: '1.2', mode: 'full', conns: 20, seconds: 10 }); // warm up lazy init
    return s;
  };
  const rss = async (s) => { if (contestant.gc) await s.gc(); return s.rss(); };
  const batch = async (s) => {
    const r = await loadgen(s, { tls: '1.2', mode: 'full', conns: opt.cacheSessions, seconds: 180, concurrency: 2 });
    if (r.connections !== opt.cacheSessions || r.failed) fail(`${contestant.id} / memory: ${r.connections}/${opt.cacheSessions} handshakes, ${r.failed} failed`);
    return r;
  };
  let s = await fresh();
  const start = await rss(s);
  await batch(s);
  const before = await rss(s);
  const r = await batch(s);
  const after = await rss(s);
  await s.stop();
  const cache = { handshakes: r.connections, rssStartKiB: start, rssBeforeKiB: before, rssAfterKiB: after,
    kibPer10k: ((after - before) * 10000) / r.connections, cachedSessions: s.stats ? s.stats.number : null };

  s = await fresh();
  const idleBefore = await rss(s);
  const i = await loadgen(s, { tls: '1.3', mode: 'idle', conns: opt.idleConns, seconds: 120, hold: 60 });
  await s.stop();
  const held = i.held || { connections: 0, rssKiB: NaN };
  if (held.connections !== opt.idleConns) fail(`${contestant.id} / idle: held ${held.connections}/${opt.idleConns} connections`);
  const idle = { connections: held.connections, rssBeforeKiB: idleBefore, rssKiB: held.rssKiB,
    kibPerConn: (held.rssKiB - idleBefore) / held.connections };
  return { cache, idle };
}

// ---- table ----------------------------------------------------------------------
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
const fmt = (x, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : '-');

function labelOf(results, id) {
  const c = results.contestants.find((x) => x.id === id);
  return c.impl ? `${c.label} [${c.impl}]` : c.label;
}

function table(results) {
  const out = [];
  const head = `${pad('cell', 52)}${pad('contestant', 32)}${lpad('rate', 11)}${lpad('srv ms', 9)}${lpad('cli ms', 9)}${lpad('resumed', 14)}${lpad('cpu÷node', 10)}${lpad('cpu÷C', 8)}`;
  out.push(head, '-'.repeat(head.length));
  for (const cell of results.cells) {
    let first = true;
    for (const [id, r] of Object.entries(cell.results)) {
      const label = labelOf(results, id);
      const rate = r.error ? 'error' : `${fmt(r.rate, cell.unit === 'MB/s' ? 1 : 0)} ${cell.unit === 'MB/s' ? 'MB/s' : '/s'}`;
      const res = r.status === 'unsupported' ? 'no (n/a)' : `${r.resumed}/${r.connections}`;
      out.push(`${pad(first ? cell.title : '', 52)}${pad(label, 32)}${lpad(rate, 11)}${lpad(fmt(r.serverMs), 9)}${lpad(fmt(r.clientMs), 9)}` +
        `${lpad(cell.resumed || r.resumed ? res : '-', 14)}${lpad(fmt(r.cpuVsNode, 2), 10)}${lpad(fmt(r.cpuVsC, 2), 8)}${r.status === 'failed' ? '  FAIL' : ''}`);
      first = false;
    }
  }
  out.push('', 'rate: median conn/s (MB/s for bulk); srv/cli ms: median CPU ms per handshake (per MB for bulk) of server / client;',
    'cpu÷node, cpu÷C: server CPU per handshake relative to node:tls defaults / the C server in the same run (lower is better).');
  if (results.memory.length) {
    out.push('', `${pad('memory (server RSS)', 30)}${lpad(`KiB per 10k sessions`, 22)}${lpad('cached', 9)}${lpad(`RSS w/ ${opt.idleConns} idle`, 18)}${lpad('KiB/idle conn', 15)}`);
    for (const m of results.memory) {
      const label = labelOf(results, m.id);
      out.push(`${pad(label, 30)}${lpad(fmt(m.cache.kibPer10k, 0), 22)}${lpad(m.cache.cachedSessions ?? '-', 9)}` +
        `${lpad(`${fmt(m.idle.rssKiB / 1024, 1)} MiB`, 18)}${lpad(fmt(m.idle.kibPerConn, 1), 15)}`);
    }
  }
  const cMem = results.memory.find((m) => m.id === 'c');
  if (cMem) {
    for (const m of results.memory.filter((x) => x.id !== 'c')) {
      const d = (m.cache.kibPer10k - cMem.cache.kibPer10k) / 10000;
      out.push(`  ${pad(labelOf(results, m.id), 32)} ${d >= 0 ? '+' : ''}${fmt(d, 2)} KiB per cached session against the C server`);
    }
  }
  out.push(...callgrindLines(results));
  const goals = goalsOf(results);
  if (goals.length) {
    out.push('', 'goals (issue 12; reported, not enforced):');
    for (const g of goals) out.push(`  ${g.met ? 'met   ' : 'missed'} ${g.goal}: ${g.text}`);
  }
  return out.join('\n');
}

const CALLGRIND_MODES = { hs: 'resumed handshake, then hang-up (as s_time)', rr: 'resumed req/reply/close' };

function callgrindLines(results) {
  if (!results.callgrind.length) return [];
  const out = ['', `instructions per connection in the server, all threads (callgrind, P-256; ${results.callgrind[0].n} ` +
    `connections counted after ${results.callgrind[0].warm} uncounted):`];
  for (const c of results.callgrind) {
    const label = labelOf(results, c.id);
    const what = `TLS${c.tls} ${pad(CALLGRIND_MODES[c.mode] || c.mode, 44)}`;
    const jit = c.jitPerConnection ? `  (+${c.jitPerConnection.toLocaleString('en')} in V8's background JIT, left out)` : '';
    out.push(c.error ? `  ${pad(label, 32)} ${what} error: ${c.error.split('\n')[0]}`
      : `  ${pad(label, 32)} ${what} ${lpad(c.irPerConnection.toLocaleString('en'), 10)} Ir${Number.isFinite(c.vsC) ? `  ${fmt(c.vsC, 2)}x C` : ''}${jit}`);
  }
  return out;
}

// The goals of issue 12, from what this run measured (cells it did not run are left out).
function goalsOf(results) {
  const goals = [];
  const ratio = (cell, id, ref) => {
    const a = cell.results[id];
    const b = cell.results[ref];
    return a && b && !a.error && !b.error && a.status !== 'unsupported' && b.status !== 'unsupported' ? a.serverMs / b.serverMs : NaN;
  };
  const worst = (cells, id, ref) => {
    let w = null;
    for (const cell of cells) {
      const r = ratio(cell, id, ref);
      if (Number.isFinite(r) && (!w || r > w.r)) w = { r, cell };
    }
    return w;
  };
  const cpuGoal = (goal, cells, limit) => {
    const w = worst(cells, 'addon', 'c');
    if (w) goals.push({ goal, value: w.r, met: w.r <= limit, text: `worst ${fmt(w.r, 2)}x (${w.cell.title})` });
  };
  const resumedCells = results.cells.filter((c) => c.resumed);
  cpuGoal('resumed, every cell: server CPU <= 1.2x the C server', resumedCells, 1.2);
  cpuGoal('full handshakes, every cell: server CPU <= 1.1x the C server', results.cells.filter((c) => !c.resumed && c.group !== 'bulk'), 1.1);
  // node:tls where it resumes: the better of its two contestants in each cell
  let nodeWorst = null;
  for (const cell of resumedCells) {
    const best = Math.min(...['node', 'node-sid'].map((id) => ratio(cell, id, 'addon')).filter(Number.isFinite));
    if (Number.isFinite(best) && (!nodeWorst || best < nodeWorst.r)) nodeWorst = { r: best, cell };
  }
  if (nodeWorst) {
    goals.push({ goal: 'resumed: node:tls (where it resumes) costs >= 2x the addon', value: nodeWorst.r, met: nodeWorst.r >= 2,
      text: `least ${fmt(nodeWorst.r, 2)}x (${nodeWorst.cell.title})` });
  }
  for (const c of results.callgrind.filter((x) => x.id === 'addon' && x.tls === '1.2' && Number.isFinite(x.vsC))) {
    goals.push({ goal: `callgrind, TLS1.2 ${CALLGRIND_MODES[c.mode] || c.mode}: <= 1.25x the C server`, value: c.vsC, met: c.vsC <= 1.25,
      text: `${c.irPerConnection.toLocaleString('en')} vs ${c.cIr.toLocaleString('en')} Ir = ${fmt(c.vsC, 2)}x` });
  }
  const bulk = results.cells.find((c) => c.group === 'bulk');
  const b = (id) => bulk && bulk.results[id] && !bulk.results[id].error ? bulk.results[id].rate : NaN;
  if (Number.isFinite(b('addon')) && Number.isFinite(b('c'))) {
    const r = b('addon') / b('c');
    const ahead = !Number.isFinite(b('node')) || b('addon') > b('node');
    goals.push({ goal: 'bulk echo: >= 0.85x the C server\'s MB/s, and ahead of node:tls', value: r, met: r >= 0.85 && ahead,
      text: `${fmt(b('addon'), 0)} MB/s = ${fmt(r, 2)}x C (${fmt(b('c'), 0)}); node:tls ${fmt(b('node'), 0)}` });
  }
  const mem = (id) => results.memory.find((m) => m.id === id);
  if (mem('addon') && mem('c')) {
    const d = (mem('addon').cache.kibPer10k - mem('c').cache.kibPer10k) / 10000;
    goals.push({ goal: 'memory: <= 0.3 KiB per cached session beyond the C server', value: d, met: d <= 0.3,
      text: `${d >= 0 ? '+' : ''}${fmt(d, 2)} KiB` });
    const idle = mem('addon').idle.kibPerConn;
    goals.push({ goal: 'memory: an idle connection no worse than before (24.7 KiB)', value: idle, met: idle <= 24.7,
      text: `${fmt(idle, 1)} KiB` });
  }
  return goals;
}

// ---- multi-core: ratios, the helper's overhead, the goals -------------------------
const pct = (r) => (r.connections ? (100 * r.resumed) / r.connections : NaN);

function mcSummary(mc) {
  const tN = `addon-t${mc.n}`;
  for (const cell of mc.cells) {
    const ref = (id) => (cell.results[id] && !cell.results[id].error ? cell.results[id] : null);
    for (const r of Object.values(cell.results)) {
      if (r.error) continue;
      const t1 = ref('addon-t1');
      const c = ref('c');
      if (t1) { r.cpuVsT1 = r.serverMs / t1.serverMs; r.rateVsT1 = r.rate / t1.rate; }
      if (c) { r.cpuVsC = r.serverMs / c.serverMs; r.rateVsC = r.rate / c.rate; }
    }
  }
  const s = { helperOverhead: [], resumption: {}, goals: [] };
  // The threads helper's own cost: threads: 1 against the plain createServer.
  for (const cell of mc.cells.filter((x) => x.mode !== 'resume-any')) {
    const a = cell.results.addon;
    const t1 = cell.results['addon-t1'];
    if (!a || !t1 || a.error || t1.error) continue;
    s.helperOverhead.push({ cell: cell.id, title: cell.title, plainMs: a.serverMs, threads1Ms: t1.serverMs,
      deltaMs: t1.serverMs - a.serverMs, ratio: t1.serverMs / a.serverMs, rateRatio: t1.rate / a.rate });
  }
  // Resumption rate: newest session from anywhere (resume-any cells).
  for (const cell of mc.cells.filter((x) => x.mode === 'resume-any')) {
    for (const [id, r] of Object.entries(cell.results)) {
      if (r.error) continue;
      (s.resumption[id] = s.resumption[id] || {})[cell.tls] = { resumed: r.resumed, connections: r.connections, pct: pct(r) };
    }
  }
  const rt = s.resumption[tN];
  if (rt) {
    const worst = Math.min(...Object.values(rt).map((x) => x.pct));
    s.goals.push({ goal: `resumption rate across ${mc.n} threads: 100 %`, value: worst, met: worst === 100,
      text: `addon threads: ${mc.n} resumed ${Object.entries(rt).map(([tls, x]) => `${x.pct.toFixed(1)} % (TLS${tls})`).join(', ')}` });
  }
  for (const tls of ['1.2', '1.3']) {
    const cell = mc.cells.find((x) => x.mode === 'resume' && x.tls === tls);
    const a = cell && cell.results['addon-t1'];
    const b = cell && cell.results[tN];
    if (!a || !b || a.error || b.error) continue;
    const ratio = b.serverMs / a.serverMs;
    s.goals.push({ goal: `server CPU per resumed handshake, ${mc.n} threads vs 1 (TLS${tls}): within 1.1x`, value: ratio, met: ratio <= 1.1,
      text: `${b.serverMs.toFixed(3)} vs ${a.serverMs.toFixed(3)} ms = ${ratio.toFixed(2)}x` });
  }
  mc.summary = s;
}

function mcTable(mc) {
  const out = [`multi-core (${mc.n} threads / cluster workers; P-256; loadgen, ${opt.concurrency} in flight; server CPU = all its processes and threads):`];
  const head = `${pad('cell', 38)}${pad('contestant', 34)}${lpad('rate', 9)}${lpad('srv ms', 8)}${lpad('primary', 9)}${lpad('cli ms', 8)}${lpad('cores s+c+o', 16)}` +
    `${lpad('resumed', 21)}${lpad('cpu÷1thr', 10)}${lpad('cpu÷C', 7)}`;
  out.push(head, '-'.repeat(head.length));
  const labels = Object.fromEntries(mc.contestants.map((c) => [c.id, c.label]));
  const clustered = new Set(mc.contestants.filter((c) => c.pids).map((c) => c.id));
  for (const cell of mc.cells) {
    let first = true;
    for (const [id, r] of Object.entries(cell.results)) {
      const res = !cell.resumed && !r.resumed ? '-'
        : r.status === 'unsupported' ? 'no (n/a)' : `${r.resumed}/${r.connections} ${fmt(pct(r), 0).padStart(3)}%`;
      out.push(r.error ? `${pad(first ? cell.title : '', 38)}${pad(labels[id], 34)}  error: ${r.error.split('\n')[0]}`
        : `${pad(first ? cell.title : '', 38)}${pad(labels[id], 34)}${lpad(`${fmt(r.rate, 0)}/s`, 9)}${lpad(fmt(r.serverMs), 8)}` +
        `${lpad(clustered.has(id) ? fmt(r.mainMs) : '', 9)}` +
        `${lpad(fmt(r.clientMs), 8)}${lpad(`${fmt(r.serverCores, 2)}+${fmt(r.clientCores, 2)}+${fmt(r.otherCores, 2)}`, 16)}${lpad(res, 21)}` +
        `${lpad(fmt(r.cpuVsT1, 2), 10)}${lpad(fmt(r.cpuVsC, 2), 7)}${r.status === 'failed' ? '  FAIL' : r.status === 'partial' ? '  (partial: expected)' : ''}`);
      first = false;
    }
  }
  out.push('', 'resume: each client thread offers the newest session it got; resume-any: every connection offers the newest session',
    'any connection got, whichever worker issued it. srv ms: server CPU per connection, all its processes; primary: the',
    "cluster primary's part of it (accepting and handing each connection to a worker). cores s+c+o: CPU seconds per",
    'second of the server + of loadgen + of everything else on the machine (other work, the harness).',
    'cpu÷1thr, cpu÷C: server CPU per connection relative to addon threads: 1 / the C server in this run.');
  const s = mc.summary;
  if (s && s.helperOverhead.length) {
    out.push('', 'threads helper overhead (threads: 1 against createServer without threads, server ms per connection):');
    for (const h of s.helperOverhead) {
      out.push(`  ${pad(h.title, 30)} ${fmt(h.plainMs)} -> ${fmt(h.threads1Ms)}  (${h.deltaMs >= 0 ? '+' : ''}${fmt(h.deltaMs)} ms, ${fmt(h.ratio, 2)}x)`);
    }
  }
  if (s && Object.keys(s.resumption).length) {
    out.push('', 'resumption rate, newest session from any worker (resume-any):');
    for (const [id, byTls] of Object.entries(s.resumption)) {
      out.push(`  ${pad(labels[id], 34)} ${Object.entries(byTls).map(([tls, x]) => `TLS${tls} ${lpad(fmt(x.pct, 1), 5)} %`).join('   ')}`);
    }
  }
  if (s && s.goals.length) {
    out.push('', 'goals (reported, not enforced):');
    for (const g of s.goals) out.push(`  ${g.met ? 'met   ' : 'missed'} ${g.goal}: ${g.text}`);
  }
  return out.join('\n');
}

// ---- machine description ----------------------------------------------------------
function machine() {
  const cpu = os.cpus();
  let opensslCli = '';
  try { opensslCli = execFileSync('openssl', ['version']).toString().trim(); } catch {}
  return { node: process.version, nodeOpenssl: process.versions.openssl, opensslCli,
    cpu: cpu[0] && cpu[0].model, cores: cpu.length, memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(), date: new Date().toISOString(), loadavgStart: os.loadavg() };
}

// ---- main -------------------------------------------------------------------------
// Runs `cells` (all on one certificate) against one server of contestant c;
// fills cell.results[c.id]. Returns the server's STATS (or null).
async function runCells(c, cells, cert, entry, { warmup, steps }) {
  const [cmd, args] = c.cmd(0, cert);
  let server;
  try {
    server = await new Server(cmd, args, { label: c.id }).start();
  } catch (e) {
    fail(`${c.id}: server did not start: ${e.message}`);
    for (const cell of cells) cell.results[c.id] = { error: e.message, status: 'failed' };
    steps.step += cells.length;
    return null;
  }
  if (server.info.impl) entry.impl = server.info.impl;
  if (server.pids) entry.pids = server.pids;
  if (warmup) {
    // Untimed: JIT, lazy init and each thread's / worker's first connections.
    progress(`[${steps.step}/${steps.total}] ${c.id}: warm-up`);
    for (const tls of ['1.2', '1.3']) {
      await loadgen(server, { tls, mode: 'resume', conns: 400, seconds: 5, concurrency: opt.concurrency }).catch(() => {});
    }
  }
  for (const cell of cells) {
    steps.step++;
    const runs = [];
    let status = 'ok';
    const rank = { ok: 0, partial: 1, unsupported: 2, failed: 3 };
    try {
      for (let i = 0; i < opt.runs; i++) {
        progress(`[${steps.step}/${steps.total}] ${c.id}: ${cell.title} — run ${i + 1}/${opt.runs}`);
        const r = await measure(server, cell);
        const st = check(c, cell, r);
        if (rank[st] > rank[status]) status = st;
        runs.push(r);
      }
      cell.results[c.id] = { ...summarize(cell, runs), status, runs };
    } catch (e) {
      fail(`${c.id} / ${cell.id}: ${e.message}`);
      cell.results[c.id] = { error: e.message, status: 'failed', runs };
    }
    if (!server.alive()) { fail(`${c.id}: server died during ${cell.id}\n${server.stderr}`); break; }
  }
  await server.stop();
  return server.stats;
}

// The single-process cells of one certificate, contestants interleaved: every server is up for the
// whole group (an idle server costs nothing), and each run of a cell measures every contestant once,
// in an order rotated from run to run, so that other load on a shared machine falls on all of them
// alike and the ratios compare runs taken minutes, not a quarter of an hour, apart. (--sequential:
// one contestant after the other, each alone on the machine.) Fills cell.results; returns each
// contestant's STATS by id.
async function runInterleaved(list, cells, cert, entries, steps) {
  const servers = new Map();
  const stats = {};
  for (const c of list) {
    const [cmd, args] = c.cmd(0, cert);
    try {
      const server = await new Server(cmd, args, { label: c.id }).start();
      servers.set(c.id, server);
      if (server.info.impl) entries[c.id].impl = server.info.impl;
    } catch (e) {
      fail(`${c.id}: server did not start: ${e.message}`);
      for (const cell of cells) cell.results[c.id] = { error: e.message, status: 'failed' };
    }
  }
  const rank = { ok: 0, partial: 1, unsupported: 2, failed: 3 };
  for (const cell of cells) {
    const live = list.filter((c) => servers.has(c.id));
    const acc = Object.fromEntries(live.map((c) => [c.id, { runs: [], status: 'ok', error: null }]));
    for (let i = 0; i < opt.runs; i++) {
      const order = live.map((_, k) => live[(k + i) % live.length]);
      for (const c of order) {
        const a = acc[c.id];
        const server = servers.get(c.id);
        if (a.error || !server.alive()) continue;
        progress(`[${steps.step + 1}/${steps.total}] ${cell.title} — run ${i + 1}/${opt.runs}: ${c.id}`);
        try {
          const r = await measure(server, cell);
          const st = check(c, cell, r);
          if (rank[st] > rank[a.status]) a.status = st;
          a.runs.push(r);
        } catch (e) {
          fail(`${c.id} / ${cell.id}: ${e.message}`);
          a.error = e.message;
        }
        if (!server.alive()) fail(`${c.id}: server died during ${cell.id}\n${server.stderr}`);
      }
    }
    for (const c of live) {
      const a = acc[c.id];
      cell.results[c.id] = a.error || !a.runs.length ? { error: a.error || 'server died', status: 'failed', runs: a.runs }
        : { ...summarize(cell, a.runs), status: a.status, runs: a.runs };
    }
    steps.step += live.length;
  }
  for (const [id, server] of servers) {
    await server.stop();
    stats[id] = server.stats;
  }
  return stats;
}

function pick(list) {
  const out = [];
  for (const c of list) {
    if (opt.only.length && !opt.only.includes(c.id)) continue;
    const ok = c.available ? c.available() : true;
    if (ok !== true) { log(`skipping ${c.id}: ${ok}`); continue; }
    out.push(c);
  }
  return out;
}

async function main() {
  const t0 = Date.now();
  const only = [mcOnly && 'multi-core', storeOnly && 'store'].filter(Boolean);
  log(`openssl-session-cache bench${opt.quick ? ' (quick)' : ''}${only.length ? ` (${only.join(' and ')} section${only.length > 1 ? 's' : ''})` : ''}: ${opt.runs} run(s) x ${opt.seconds}s per cell`);
  setup.ensureTools({ needValgrind: opt.callgrind && (opt.singleCore || opt.callgrindOnly), needRedis: opt.store }, log);
  setup.build();
  const certs = setup.certs();

  const contestants = opt.singleCore || opt.callgrindOnly ? pick(CONTESTANTS) : [];
  const mcContestants = opt.multicore ? pick(MC_CONTESTANTS) : [];
  const results = { meta: { ...machine(), options: opt }, contestants: contestants.map(({ id, label }) => ({ id, label })),
    cells: opt.singleCore ? CELLS.map((c) => ({ ...c, results: {} })) : [], memory: [], callgrind: [], failures };
  const mc = opt.multicore ? { n: N, contestants: mcContestants.map(({ id, label }) => ({ id, label })),
    cells: MC_CELLS.map((c) => ({ ...c, results: {} })) } : null;
  if (mc) results.multicore = mc;

  // Each contestant runs alone, one server process per certificate.
  const steps = { step: 0, total: (opt.singleCore ? contestants.length * (CELLS.length + 1) : 0) + mcContestants.length * MC_CELLS.length +
    (opt.store ? storeCells(opt).filter((c) => !opt.only.length || opt.only.includes(c.contestant)).length : 0) };
  const entries = Object.fromEntries(results.contestants.map((e) => [e.id, e]));
  if (opt.singleCore && !opt.sequential) {
    for (const cert of CERTS) {
      const stats = await runInterleaved(contestants, results.cells.filter((x) => x.cert === cert), certs[cert], entries, steps);
      for (const [id, st] of Object.entries(stats)) if (st) entries[id][`stats_${cert}`] = st;
    }
  }
  for (const c of opt.singleCore ? contestants : []) {
    const entry = entries[c.id];
    if (opt.sequential) {
      for (const cert of CERTS) {
        const stats = await runCells(c, results.cells.filter((x) => x.cert === cert), certs[cert], entry, { steps });
        if (stats) entry[`stats_${cert}`] = stats;
      }
    }
    steps.step++;
    progress(`[${steps.step}/${steps.total}] ${c.id}: memory (2 x ${opt.cacheSessions} cached sessions, ${opt.idleConns} idle connections)`);
    try {
      results.memory.push({ id: c.id, ...(await memory(c, certs.p256)) });
    } catch (e) {
      fail(`${c.id} / memory: ${e.message}`);
    }
  }

  // Ratios against node:tls defaults and the C server of this same run.
  for (const cell of results.cells) {
    const ref = (id) => cell.results[id] && !cell.results[id].error ? cell.results[id] : null;
    for (const r of Object.values(cell.results)) {
      if (r.error) continue;
      const node = ref('node');
      const c = ref('c');
      if (node) { r.cpuVsNode = r.serverMs / node.serverMs; r.rateVsNode = r.rate / node.rate; }
      if (c) { r.cpuVsC = r.serverMs / c.serverMs; r.rateVsC = r.rate / c.rate; }
    }
  }

  // Multi-core section: after a warm-up, the same cells for each contestant.
  for (const c of mcContestants) {
    const entry = mc.contestants.find((x) => x.id === c.id);
    entry.stats = await runCells(c, mc.cells, certs.p256, entry, { warmup: true, steps });
  }
  if (mc) mcSummary(mc);

  // Store section: its own redis-server, writer and measured servers.
  if (opt.store) {
    results.store = await runStore({ opt, certs, NODE, ROOT, addonAvailable, only: opt.only, check, fail, progress, log, steps });
  }

  if (opt.callgrind && (opt.singleCore || opt.callgrindOnly)) {
    // node under callgrind starts in ~11 s and needs thousands of connections to warm up: --quick
    // counts the C server only.
    const ids = [...(quick && !flag('--callgrind-addon') ? [] : ['addon']), 'c', ...(flag('--callgrind-node') ? ['node', 'node-sid'] : [])];
    const kinds = [['1.2', 'hs'], ['1.2', 'rr'], ['1.3', 'rr']];
    for (const c of contestants.filter((x) => ids.includes(x.id))) {
      for (const [tls, mode] of kinds) {
        if (c.noResume && c.noResume[tls]) continue;
        progress(`callgrind: ${c.id} TLS${tls} ${mode}, ${opt.callgrindWarm} + ${opt.callgrindN} connections`);
        try {
          results.callgrind.push({ id: c.id, ...(await irPerConnection(c, certs.p256,
            { tls, mode, warm: opt.callgrindWarm, n: opt.callgrindN, request: opt.requestBytes })) });
        } catch (e) {
          fail(`${c.id} / callgrind TLS${tls} ${mode}: ${e.message}`);
          results.callgrind.push({ id: c.id, tls, mode, n: opt.callgrindN, warm: opt.callgrindWarm, error: e.message });
        }
      }
    }
    for (const x of results.callgrind) {
      const c = results.callgrind.find((y) => y.id === 'c' && y.tls === x.tls && y.mode === x.mode && !y.error);
      if (c && !x.error) { x.vsC = x.irPerConnection / c.irPerConnection; x.cIr = c.irPerConnection; }
    }
  }

  results.meta.seconds = (Date.now() - t0) / 1000;
  results.meta.loadavgEnd = os.loadavg();
  // The full run writes results.json + chart.svg; the multi-core and store
  // sections also go to multicore.json / store.json on their own (all of it
  // with --multicore / --store).
  const written = [];
  if (opt.singleCore) {
    fs.writeFileSync(path.join(setup.OUT, 'results.json'), JSON.stringify(results, null, 2));
    fs.writeFileSync(path.join(setup.OUT, 'chart.svg'), renderChart(results));
    written.push('results.json', 'chart.svg');
  }
  if (mc) {
    fs.writeFileSync(path.join(setup.OUT, 'multicore.json'), JSON.stringify({ meta: results.meta, multicore: mc, failures }, null, 2));
    written.push('multicore.json');
  }
  if (opt.callgrindOnly) {
    fs.writeFileSync(path.join(setup.OUT, 'callgrind.json'), JSON.stringify({ meta: results.meta, contestants: results.contestants,
      callgrind: results.callgrind, failures }, null, 2));
    written.push('callgrind.json');
  }
  if (results.store) {
    fs.writeFileSync(path.join(setup.OUT, 'store.json'), JSON.stringify({ meta: results.meta, store: results.store, failures }, null, 2));
    written.push('store.json');
  }
  if (opt.publish) {
    const dir = path.join(ROOT, 'results');
    fs.mkdirSync(dir, { recursive: true });
    for (const f of written) fs.copyFileSync(path.join(setup.OUT, f), path.join(dir, f));
  }
  log('');
  if (opt.singleCore) console.log(table(results));
  else if (opt.callgrindOnly) console.log(callgrindLines(results).join('\n').trim());
  if (mc) console.log(`${opt.singleCore ? '\n' : ''}${mcTable(mc)}`);
  if (results.store) console.log(`${opt.singleCore || mc ? '\n' : ''}${storeTable(results.store)}`);
  console.log(`\n${results.meta.cpu}, ${results.meta.cores} cores; node ${results.meta.node} (OpenSSL ${results.meta.nodeOpenssl}); ` +
    `${results.meta.seconds.toFixed(0)} s. Wrote ${written.map((f) => `bench/out/${f}`).join(', ')}${opt.publish ? ' and bench/results/' : ''}.`);
  if (failures.length) {
    console.error(`\nBENCH FAILED: ${failures.length} check(s) failed:\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; }).finally(() => require('./lib/proc').killAll());
