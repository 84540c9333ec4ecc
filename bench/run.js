#!/usr/bin/env node
'use strict';
// Benchmark harness: `npm run bench` / `node bench/run.js [flags]`.
//   --quick          small version, under two minutes
//   --runs N         runs per cell (median reported); default 5, quick 1
//   --time S         seconds per handshake run; default 2, quick 1
//   --only a,b       contestants by id (addon, node, node-sid, c)
//   --no-callgrind   skip the instruction counts
//   --callgrind-addon  count the addon under callgrind in --quick too (slow)
//   --callgrind-node also count node:tls under callgrind (slow)
//   --publish        also copy results.json and chart.svg to bench/results/
// --quick uses the P-256 certificate only and smaller memory/bulk sizes.
// Writes bench/out/results.json and bench/out/chart.svg; exits 1 when any
// cell fails its checks (e.g. a "resumed" cell that did not resume).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const setup = require('./lib/setup');
const { Server } = require('./lib/proc');
const { sTime, loadgen } = require('./lib/clients');
const { irPerResume } = require('./lib/callgrind');
const { renderChart } = require('./chart');

// ---- options ---------------------------------------------------------------
const argv = process.argv.slice(2);
const flag = (f) => argv.includes(f);
const value = (f, d) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : d);
const quick = flag('--quick');
const opt = {
  quick,
  runs: Number(value('--runs', quick ? 1 : 5)),
  seconds: Number(value('--time', quick ? 1 : 2)),
  concurrency: 8,
  bulkBytes: (quick ? 16 : 100) << 20,
  cacheSessions: quick ? 2000 : 10000,
  idleConns: quick ? 200 : 1000,
  callgrind: !flag('--no-callgrind'),
  callgrindN: quick ? 100 : 1000,
  only: value('--only', '').split(',').filter(Boolean),
  publish: flag('--publish'),
};

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
CELLS.push({ id: 'bulk-tls13', group: 'bulk', title: `TLS1.3 P-256 echo ${opt.bulkBytes >> 20} MiB (loadgen)`,
  cert: 'p256', tls: '1.3', resumed: false, client: 'bulk', concurrency: 1, unit: 'MB/s' });

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
  return loadgen(server, { tls: cell.tls, mode: cell.resumed ? 'resume' : 'full', conns: 1000000,
    seconds: opt.seconds, concurrency: cell.concurrency });
}

// Checks one run; returns 'ok', 'unsupported' or 'failed'.
function check(contestant, cell, r) {
  const where = `${contestant.id} / ${cell.id}`;
  if (!r.connections) { fail(`${where}: no connection completed`); return 'failed'; }
  if (r.failed) { fail(`${where}: ${r.failed} connections failed`); return 'failed'; }
  if (cell.client === 'bulk' && r.bytes !== opt.bulkBytes) { fail(`${where}: echoed ${r.bytes} of ${opt.bulkBytes} bytes`); return 'failed'; }
  if (!cell.resumed) {
    if (r.resumed) { fail(`${where}: ${r.resumed} connections resumed in a full-handshake cell`); return 'failed'; }
    return 'ok';
  }
  const unsupported = contestant.noResume && contestant.noResume[cell.tls];
  if (r.resumed === r.connections) return 'ok';
  if (unsupported && r.resumed === 0) return 'unsupported';
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
  const head = `${pad('cell', 46)}${pad('contestant', 32)}${lpad('rate', 11)}${lpad('srv ms', 9)}${lpad('cli ms', 9)}${lpad('resumed', 14)}${lpad('cpu÷node', 10)}${lpad('cpu÷C', 8)}`;
  out.push(head, '-'.repeat(head.length));
  for (const cell of results.cells) {
    let first = true;
    for (const [id, r] of Object.entries(cell.results)) {
      const label = labelOf(results, id);
      const rate = r.error ? 'error' : `${fmt(r.rate, cell.unit === 'MB/s' ? 1 : 0)} ${cell.unit === 'MB/s' ? 'MB/s' : '/s'}`;
      const res = r.status === 'unsupported' ? 'no (n/a)' : `${r.resumed}/${r.connections}`;
      out.push(`${pad(first ? cell.title : '', 46)}${pad(label, 32)}${lpad(rate, 11)}${lpad(fmt(r.serverMs), 9)}${lpad(fmt(r.clientMs), 9)}` +
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
  if (results.callgrind.length) {
    out.push('', 'instructions per resumed handshake in the server (callgrind, P-256):');
    for (const c of results.callgrind) {
      const label = labelOf(results, c.id);
      out.push(c.error ? `  ${pad(label, 32)} TLS${c.tls}  error: ${c.error.split('\n')[0]}`
        : `  ${pad(label, 32)} TLS${c.tls}  ${lpad(c.irPerHandshake.toLocaleString('en'), 12)} Ir  (n=${c.n})`);
    }
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
    kernel: os.release(), date: new Date().toISOString() };
}

// ---- main -------------------------------------------------------------------------
async function main() {
  const t0 = Date.now();
  log(`openssl-session-cache bench${opt.quick ? ' (quick)' : ''}: ${opt.runs} run(s) x ${opt.seconds}s per cell`);
  setup.ensureTools({ needValgrind: opt.callgrind }, log);
  setup.build();
  const certs = setup.certs();

  const contestants = [];
  for (const c of CONTESTANTS) {
    if (opt.only.length && !opt.only.includes(c.id)) continue;
    const ok = c.available ? c.available() : true;
    if (ok !== true) { log(`skipping ${c.id}: ${ok}`); continue; }
    contestants.push(c);
  }
  const results = { meta: { ...machine(), options: opt }, contestants: contestants.map(({ id, label }) => ({ id, label })),
    cells: CELLS.map((c) => ({ ...c, results: {} })), memory: [], callgrind: [], failures };

  // Each contestant runs alone, one server process per certificate.
  const totalSteps = contestants.length * (CELLS.length + 1);
  let step = 0;
  for (const c of contestants) {
    for (const cert of CERTS) {
      const cells = results.cells.filter((x) => x.cert === cert);
      const [cmd, args] = c.cmd(0, certs[cert]);
      let server;
      try {
        server = await new Server(cmd, args, { label: c.id }).start();
      } catch (e) {
        fail(`${c.id}: server did not start: ${e.message}`);
        for (const cell of cells) cell.results[c.id] = { error: e.message, status: 'failed' };
        step += cells.length;
        continue;
      }
      if (server.info.impl) results.contestants.find((x) => x.id === c.id).impl = server.info.impl;
      for (const cell of cells) {
        step++;
        const runs = [];
        let status = 'ok';
        try {
          for (let i = 0; i < opt.runs; i++) {
            progress(`[${step}/${totalSteps}] ${c.id}: ${cell.title} — run ${i + 1}/${opt.runs}`);
            const r = await measure(server, cell);
            const s = check(c, cell, r);
            if (s !== 'ok') status = s;
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
      if (server.stats) results.contestants.find((x) => x.id === c.id)[`stats_${cert}`] = server.stats;
    }
    step++;
    progress(`[${step}/${totalSteps}] ${c.id}: memory (2 x ${opt.cacheSessions} cached sessions, ${opt.idleConns} idle connections)`);
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

  if (opt.callgrind) {
    // node under callgrind starts in ~11 s: --quick counts the C server only.
    const ids = [...(quick && !flag('--callgrind-addon') ? [] : ['addon']), 'c', ...(flag('--callgrind-node') ? ['node', 'node-sid'] : [])];
    for (const c of contestants.filter((x) => ids.includes(x.id))) {
      for (const tls of ['1.2', '1.3']) {
        if (c.noResume && c.noResume[tls]) continue;
        progress(`callgrind: ${c.id} TLS${tls}, ${opt.callgrindN} resumed handshakes`);
        try {
          results.callgrind.push({ id: c.id, ...(await irPerResume(c, certs.p256, { tls, base: 10, n: opt.callgrindN })) });
        } catch (e) {
          fail(`${c.id} / callgrind TLS${tls}: ${e.message}`);
          results.callgrind.push({ id: c.id, tls, n: opt.callgrindN, error: e.message });
        }
      }
    }
  }

  results.meta.seconds = (Date.now() - t0) / 1000;
  fs.writeFileSync(path.join(setup.OUT, 'results.json'), JSON.stringify(results, null, 2));
  fs.writeFileSync(path.join(setup.OUT, 'chart.svg'), renderChart(results));
  if (opt.publish) {
    const dir = path.join(ROOT, 'results');
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(path.join(setup.OUT, 'results.json'), path.join(dir, 'results.json'));
    fs.copyFileSync(path.join(setup.OUT, 'chart.svg'), path.join(dir, 'chart.svg'));
  }
  log('');
  console.log(table(results));
  console.log(`\n${results.meta.cpu}, ${results.meta.cores} cores; node ${results.meta.node} (OpenSSL ${results.meta.nodeOpenssl}); ` +
    `${results.meta.seconds.toFixed(0)} s. Wrote bench/out/results.json, bench/out/chart.svg${opt.publish ? ' and bench/results/' : ''}.`);
  if (failures.length) {
    console.error(`\nBENCH FAILED: ${failures.length} check(s) failed:\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; }).finally(() => require('./lib/proc').killAll());
