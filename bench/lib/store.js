'use strict';
// The store section (`--store`, and the full run): what a resumed handshake
// costs when the session comes from a shared store (Redis) instead of the
// internal cache, against a full handshake and against node:tls doing the same
// the Node way. A local redis-server is started on a free port and stopped
// after.
//
// The L2 cells ("resumed from the store") need every measured connection to be
// an internal-cache miss that resumes from Redis. Two server processes share
// the certificate, serviceName and storeKey: a "writer" issues the sessions
// (loadgen --mode resume-fresh primes N distinct sessions there with full
// handshakes, untimed; the writer writes each to Redis), then each timed
// connection offers one of them, once, to the measured server, which has
// never seen it: an L1 miss, a GET, a resumption. Checked on every run: the
// measured server's store hits (stats().store.hits for the addon, hits in
// resumeSession for node:tls) grow by exactly the number of connections, and
// every connection resumed. L1 cells check the opposite: no store hit.
const { Server } = require('./proc');
const { loadgen } = require('./clients');
const { RedisServer } = require('./redis');

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const sum = (xs) => xs.reduce((a, x) => a + x, 0);

// Contestants: cmd(port, cert, redisPort, storeKeyHex) -> [cmd, args].
function contestants({ NODE, ROOT, addonAvailable }) {
  const path = require('path');
  const script = (name, ...extra) => (port, c, redisPort, keyHex) =>
    [NODE, [path.join(ROOT, 'servers', name), '--port', String(port), '--cert', c.cert, '--key', c.key,
      '--redis-port', String(redisPort), '--store-key', keyHex, ...extra]];
  const ioredis = () => { try { require.resolve('ioredis'); return true; } catch { return 'ioredis is not installed (npm ci)'; } };
  return [
    { id: 'addon-store', label: 'addon + RedisStore', cmd: script('addon-store.js'),
      available: () => { const a = ioredis(); return a !== true ? a : addonAvailable(); },
      storeHits: (s) => s.store.hits, storeCounters: (s) => s.store },
    { id: 'node-redis', label: 'node:tls + Redis (newSession/resumeSession)', cmd: script('node-tls.js', '--mode', 'redis'),
      available: ioredis, storeHits: (s) => s.hits,
      storeCounters: (s) => ({ hits: s.hits, misses: s.misses, writes: s.writes, errors: s.errors }),
      noResume: { '1.3': 'node:tls session events do not resume TLS 1.3' } },
  ];
}

// Cells: per TLS version and connections in flight, the four paths.
function cells(opt) {
  const out = [];
  for (const tls of ['1.2', '1.3']) {
    for (const concurrency of [1, opt.concurrency]) {
      const group = `TLS${tls} P-256, ${concurrency} in flight`;
      const base = { group, tls, concurrency, cert: 'p256', client: 'loadgen', unit: 'conn/s' };
      const id = (p) => `st-tls${tls.replace('.', '')}-c${concurrency}-${p}`;
      out.push(
        { ...base, id: id('l2'), path: 'l2', contestant: 'addon-store', title: 'addon: resumed from the store (L2)',
          mode: 'resume-fresh', resumed: true, storeHits: 'all' },
        { ...base, id: id('l1'), path: 'l1', contestant: 'addon-store', title: 'addon: resumed from the internal cache (L1)',
          mode: 'resume', resumed: true, storeHits: 'none' },
        { ...base, id: id('full'), path: 'full', contestant: 'addon-store', title: 'addon: full handshake',
          mode: 'full', resumed: false, storeHits: 'none' },
        { ...base, id: id('node'), path: 'node', contestant: 'node-redis', title: 'node:tls: resumed via Redis (events)',
          mode: 'resume-fresh', resumed: true, storeHits: 'all' },
      );
    }
  }
  return out;
}

function summarize(runs) {
  const per = (f) => median(runs.map((r) => (f(r) * 1000) / r.connections));
  return {
    rate: median(runs.map((r) => r.connections / r.seconds)),
    serverMs: per((r) => r.serverCpu),
    clientMs: per((r) => r.clientCpu),
    redisMs: per((r) => r.watchCpu.redis),
    hsP50: median(runs.map((r) => r.hs.p50)),
    hsP90: median(runs.map((r) => r.hs.p90)),
    hsP99: median(runs.map((r) => r.hs.p99)),
    hsMean: median(runs.map((r) => r.hs.mean)),
    // the store GETs as the measured server saw them (call to answer): median over runs of each run's median
    ...(runs.every((r) => r.serverGetUs && r.serverGetUs.n) ? { serverGetP50: median(runs.map((r) => r.serverGetUs.p50)),
      serverGetP99: median(runs.map((r) => r.serverGetUs.p99)) } : {}),
    connections: sum(runs.map((r) => r.connections)),
    resumed: sum(runs.map((r) => r.resumed)),
    storeHits: sum(runs.map((r) => r.storeHits)),
    serverCores: median(runs.map((r) => r.serverCpu / r.seconds)),
    clientCores: median(runs.map((r) => r.clientCpu / r.seconds)),
    redisCores: median(runs.map((r) => r.watchCpu.redis / r.seconds)),
    otherCores: median(runs.map((r) => Math.max(0, r.otherCpu - r.watchCpu.redis) / r.seconds)),
  };
}

// The goals of issue 9, evaluated on the medians (reported, not enforced).
function goals(st) {
  const out = [];
  const rtt = st.redisRtt && st.redisRtt.ioredis ? st.redisRtt.ioredis.p50 : NaN;
  const get = (tls, c, p) => {
    const cell = st.cells.find((x) => x.tls === tls && x.concurrency === c && x.path === p);
    const r = cell && cell.results[cell.contestant];
    return r && !r.error ? r : null;
  };
  for (const tls of ['1.2', '1.3']) {
    for (const c of [1, st.concurrency]) {
      const l2 = get(tls, c, 'l2');
      const l1 = get(tls, c, 'l1');
      const full = get(tls, c, 'full');
      const node = get(tls, c, 'node');
      const where = `TLS${tls}, ${c} in flight`;
      if (l2 && full) {
        out.push({ goal: `server CPU: L2 resume < full handshake (${where})`, met: l2.serverMs < full.serverMs,
          value: l2.serverMs / full.serverMs, text: `${l2.serverMs.toFixed(3)} vs ${full.serverMs.toFixed(3)} ms = ${(l2.serverMs / full.serverMs).toFixed(2)}x` });
      }
      if (l2 && node) {
        const what = node.status === 'unsupported' ? "node:tls's connection (it cannot resume TLS 1.3: a full handshake + a GET that misses)" : "node:tls's Redis-backed resume";
        out.push({ goal: `server CPU: L2 resume < ${what} (${where})`, met: l2.serverMs < node.serverMs,
          value: l2.serverMs / node.serverMs, text: `${l2.serverMs.toFixed(3)} vs ${node.serverMs.toFixed(3)} ms = ${(l2.serverMs / node.serverMs).toFixed(2)}x` });
      }
      if (l2 && l1 && Number.isFinite(rtt)) {
        const d = l2.hsP50 - l1.hsP50;
        out.push({ goal: `latency: L2 - L1 (median) <= one Redis GET round trip (ioredis median) (${where})`, met: d <= rtt,
          value: d, text: `${l2.hsP50.toFixed(0)} - ${l1.hsP50.toFixed(0)} = ${d.toFixed(0)} us vs ${rtt.toFixed(0)} us` +
            ` (${(d / rtt).toFixed(1)} round trips; the GET as the server saw it: ${fmt(l2.serverGetP50, 0)} us;` +
            ` the server's extra CPU, L2 - L1: ${((l2.serverMs - l1.serverMs) * 1000).toFixed(0)} us)${c > 1 ? '; with several in flight this includes queueing' : ''}` });
      }
    }
  }
  return out;
}

// The yardstick over all rounds: medians of the rounds' medians.
function mergeRtt(samples) {
  const io = samples.map((x) => x.ioredis);
  const bench = samples.map((x) => x.benchmark).filter((x) => x && !x.error);
  const m = (xs, k) => median(xs.map((x) => x[k]));
  return {
    ioredis: { client: `ioredis ${require('ioredis/package.json').version}`, valueBytes: 300, samples: io.length, n: io.length && io[0].n,
      p50: m(io, 'p50'), p90: m(io, 'p90'), p99: m(io, 'p99'), mean: m(io, 'mean'), min50: Math.min(...io.map((x) => x.p50)), max50: Math.max(...io.map((x) => x.p50)) },
    benchmark: bench.length ? { client: 'redis-benchmark -t get -c 1 -d 300', samples: bench.length, n: bench[0].n,
      p50: m(bench, 'p50'), p99: m(bench, 'p99'), mean: m(bench, 'mean') } : samples[0] && samples[0].benchmark,
    samples,
  };
}

// Runs the section; returns its results object. env: { opt, certs, NODE, ROOT,
// addonAvailable, only, check, fail, progress, log, steps }.
//
// All servers (a writer and a measured server per contestant) run for the
// whole section; the cells of one group (TLS version x connections in flight)
// are interleaved: round i runs one Redis GET sample, then each cell once, in
// an order rotated every round, so that the machine's other load (it is
// shared) falls on every path alike.
async function runStore(env) {
  const { opt, certs, fail, progress, log, check, steps } = env;
  const crypto = require('crypto');
  const st = { concurrency: opt.concurrency, sessions: opt.storeConns, runs: opt.runs, contestants: [], cells: cells(opt).map((c) => ({ ...c, results: {} })) };
  const list = contestants(env).filter((c) => {
    if (env.only.length && !env.only.includes(c.id)) return false;
    const ok = c.available();
    if (ok !== true) { log(`skipping ${c.id}: ${ok}`); return false; }
    return true;
  });
  st.contestants = list.map(({ id, label }) => ({ id, label }));
  if (!list.length) return st;

  const redis = await new RedisServer().start();
  st.redis = { version: redis.version };
  const servers = {}; // id -> { writer, server }
  const rtt = [];
  try {
    const keyHex = crypto.randomBytes(32).toString('hex');
    for (const c of list) {
      const start = (role) => {
        const [cmd, args] = c.cmd(0, certs.p256, redis.port, keyHex);
        return new Server(cmd, args, { label: `${c.id} ${role}`, control: true }).start();
      };
      try {
        const writer = await start('writer');
        servers[c.id] = { writer };
        servers[c.id].server = await start('measured');
      } catch (e) {
        fail(`${c.id}: server did not start: ${e.message}`);
        if (servers[c.id]) await servers[c.id].writer.stop();
        delete servers[c.id];
      }
    }
    // Untimed warm-up of every process: JIT, lazy init, the Redis connections.
    for (const c of list.filter((x) => servers[x.id])) {
      const { writer, server } = servers[c.id];
      progress(`[${steps.step}/${steps.total}] store ${c.id}: warm-up`);
      for (const tls of ['1.2', '1.3']) {
        await loadgen(server, { tls, mode: 'resume-fresh', from: writer.port, conns: 300, seconds: 30, concurrency: 2 }).catch(() => {});
        if (c.id === 'addon-store') {
          await loadgen(server, { tls, mode: 'resume', conns: 300, seconds: 10, concurrency: 2 }).catch(() => {});
          await loadgen(server, { tls, mode: 'full', conns: 100, seconds: 10, concurrency: 2 }).catch(() => {});
        }
      }
      await server.query(); // resets its GET timings
    }
    const watch = { redis: redis.pid };
    const rank = { ok: 0, partial: 1, unsupported: 2, failed: 3 };
    const groups = [...new Set(st.cells.map((x) => x.group))];
    for (const group of groups) {
      const mine = st.cells.filter((x) => x.group === group && list.some((c) => c.id === x.contestant));
      const state = new Map(mine.map((cell) => [cell, { runs: [], status: 'ok', dead: !servers[cell.contestant] }]));
      for (const cell of mine) if (!servers[cell.contestant]) cell.results[cell.contestant] = { error: 'server did not start', status: 'failed' };
      for (let i = 0; i < opt.runs; i++) {
        progress(`[${steps.step}/${steps.total}] store ${group}: Redis GET round trip — round ${i + 1}/${opt.runs}`);
        rtt.push({ group, round: i, ...(await redis.getRoundTrip()) });
        const order = mine.map((_, k) => mine[(k + i) % mine.length]);
        for (const cell of order) {
          const s = state.get(cell);
          if (s.dead) continue;
          const c = list.find((x) => x.id === cell.contestant);
          const { writer, server } = servers[c.id];
          progress(`[${steps.step}/${steps.total}] store ${group}: ${c.id}, ${cell.title} — round ${i + 1}/${opt.runs}`);
          try {
            if (cell.mode === 'resume-fresh') await redis.flush(); // only this run's sessions in Redis
            const s0 = await server.query();
            const r = cell.mode === 'resume-fresh'
              ? await loadgen(server, { tls: cell.tls, mode: cell.mode, from: writer.port, conns: opt.storeConns, seconds: 600,
                concurrency: cell.concurrency, watch, timeoutMs: 900000 })
              : await loadgen(server, { tls: cell.tls, mode: cell.mode, conns: 1000000, seconds: opt.seconds, concurrency: cell.concurrency, watch });
            const s1 = await server.query();
            r.round = i;
            r.storeHits = c.storeHits(s1) - c.storeHits(s0);
            const a = c.storeCounters(s0);
            const b = c.storeCounters(s1);
            r.storeDelta = Object.fromEntries(Object.keys(b).filter((k) => typeof b[k] === 'number').map((k) => [k, b[k] - a[k]]));
            r.serverGetUs = s1.getUs; // the store's GETs during the run, as the server saw them
            let status = check(c, cell, r);
            // Where the session came from: every L2 connection a store hit,
            // no L1 or full connection one.
            if (status !== 'unsupported' && cell.storeHits === 'all' && r.storeHits !== r.connections) {
              fail(`${c.id} / ${cell.id}: ${r.storeHits} store hits for ${r.connections} connections (every one should resume from the store)`);
              status = 'failed';
            }
            if (cell.storeHits === 'none' && r.storeHits !== 0) {
              fail(`${c.id} / ${cell.id}: ${r.storeHits} store hits in a cell that should not ask the store`);
              status = 'failed';
            }
            if (rank[status] > rank[s.status]) s.status = status;
            s.runs.push(r);
          } catch (e) {
            fail(`${c.id} / ${cell.id}: ${e.message}`);
            s.status = 'failed';
            s.error = e.message;
          }
          if (!server.alive() || !writer.alive()) {
            fail(`${c.id}: a server died during ${cell.id}\n${server.stderr}${writer.stderr}`);
            for (const [x, y] of state) if (x.contestant === c.id) y.dead = true;
            await server.stop();
            await writer.stop();
            delete servers[c.id];
          }
        }
      }
      for (const cell of mine) {
        steps.step++;
        const s = state.get(cell);
        if (cell.results[cell.contestant]) continue;
        cell.results[cell.contestant] = s.runs.length && !s.error
          ? { ...summarize(s.runs), status: s.status, runs: s.runs }
          : { error: s.error || 'no run completed', status: 'failed', runs: s.runs };
      }
    }
    progress('store: stopping');
    for (const c of list) {
      const entry = st.contestants.find((x) => x.id === c.id);
      const p = servers[c.id];
      if (!p) continue;
      await p.server.stop();
      await p.writer.stop();
      entry.stats = { measured: p.server.stats, writer: p.writer.stats };
      if (p.server.stderr.trim()) entry.stderr = p.server.stderr.slice(-1000);
    }
  } finally {
    for (const p of Object.values(servers)) { await p.server.stop(); await p.writer.stop(); }
    await redis.stop();
  }
  st.redisRtt = mergeRtt(rtt);
  st.goals = goals(st);
  return st;
}

const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
const fmt = (x, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : '-');

function storeTable(st) {
  const out = [`store: a session from Redis (L2) vs the internal cache (L1) vs a full handshake; node:tls the Node way (P-256; redis-server ${st.redis ? st.redis.version : '?'} on 127.0.0.1; loadgen):`];
  const head = `${pad('cell', 28)}${pad('path', 46)}${lpad('rate', 9)}${lpad('srv ms', 8)}${lpad('redis ms', 9)}${lpad('cli ms', 8)}` +
    `${lpad('p50 us', 8)}${lpad('p99 us', 8)}${lpad('GET us', 8)}${lpad('resumed', 14)}${lpad('store hits', 12)}`;
  out.push(head, '-'.repeat(head.length));
  let group = null;
  for (const cell of st.cells) {
    const r = cell.results[cell.contestant];
    if (!r) continue;
    const g = cell.group !== group ? cell.group : '';
    group = cell.group;
    if (r.error) { out.push(`${pad(g, 28)}${pad(cell.title, 46)}  error: ${r.error.split('\n')[0]}`); continue; }
    const res = !cell.resumed ? (r.resumed ? `${r.resumed}/${r.connections}` : '-') : r.status === 'unsupported' ? 'no (n/a)' : `${r.resumed}/${r.connections}`;
    out.push(`${pad(g, 28)}${pad(cell.title, 46)}${lpad(`${fmt(r.rate, 0)}/s`, 9)}${lpad(fmt(r.serverMs), 8)}${lpad(fmt(r.redisMs), 9)}` +
      `${lpad(fmt(r.clientMs), 8)}${lpad(fmt(r.hsP50, 0), 8)}${lpad(fmt(r.hsP99, 0), 8)}${lpad(fmt(r.serverGetP50, 0), 8)}${lpad(res, 14)}` +
      `${lpad(r.status === 'unsupported' ? '-' : r.storeHits, 12)}${r.status === 'failed' ? '  FAIL' : ''}`);
  }
  out.push('', 'L2: every connection offers a session the measured server never saw (issued by a second process of the same',
    'kind, which wrote it to Redis): an internal-cache miss that resumes from Redis. srv / redis / cli ms: CPU ms per',
    'connection of the measured server / of redis-server / of loadgen. p50 / p99 us: client-observed TCP connect + TLS',
    'handshake, microseconds (medians over runs). GET us: median time of the store\'s GETs as the measured server saw',
    'them (call to answer, in its event loop). store hits: lookups answered from Redis (the measured server\'s counters).',
    `Cells of a group interleaved: ${st.runs} rounds, each cell once per round.`);
  const rt = st.redisRtt;
  if (rt) {
    out.push('', `one Redis GET round trip from a client on this machine: ioredis (node) median ${fmt(rt.ioredis.p50, 0)} us, p99 ${fmt(rt.ioredis.p99, 0)} us` +
      (rt.benchmark && !rt.benchmark.error ? `; redis-benchmark (C) median ${fmt(rt.benchmark.p50, 0)} us, p99 ${fmt(rt.benchmark.p99, 0)} us` : ''),
    `  (${rt.ioredis.samples} samples of ${rt.ioredis.n} sequential GETs, one per round; their medians ranged ${fmt(rt.ioredis.min50, 0)}-${fmt(rt.ioredis.max50, 0)} us)`);
  }
  if (st.goals && st.goals.length) {
    out.push('', 'goals (reported, not enforced):');
    for (const g of st.goals) out.push(`  ${g.met ? 'met   ' : 'missed'} ${g.goal}: ${g.text}`);
  }
  return out.join('\n');
}

module.exports = { runStore, storeTable, storeCells: cells };
