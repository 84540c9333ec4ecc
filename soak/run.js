#!/usr/bin/env node
'use strict';
// Soak test: `npm run soak [-- --minutes N] [--server addon|node]`.
//   --minutes N          load duration, fractions allowed (default 10)
//   --server addon|node  addon: createServer from dist/ (default); node: node:tls with a session-ID
//                        Map, for comparison (its counter checks do not apply)
//   --threads N          client worker threads (default 4), plus one thread of silent clients
//   --rate R             connections per second in all (default 500; 0 = as fast as possible)
//   --sample S           seconds between samples (default: minutes/60*60 s clamped to 1..5)
//   --handshake-timeout MS   server handshakeTimeout (default 2000)
//   --session-timeout S  server session timeout (default 10); clients drop saved sessions at half
//   --cache-size N       server session cache size (default 100000)
//   --seed N             client PRNG seed (default: time-based; printed in the report)
//   --mix kind=w,...     client kind weights (see soak/client.c), e.g. --mix reset13=0
//   --no-gc              sample RSS without a full GC in the server first
//   --inject-leak BYTES  self-test: the server keeps BYTES per connection, so the RSS check must fail
// Starts the server in a child process (soak/server.js, IPC), runs soak/bin/client (built from
// soak/client.c on the system libssl) for the duration, samples the server's RSS (/proc VmRSS) and
// stats, waits for every connection to close, then checks the criteria below, prints a report and
// writes soak/out/soak-<server>-<time>.json. Exit code 1 when a criterion fails.
const { execFileSync, fork, spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { ensureTools } = require('../bench/lib/setup');

const ROOT = path.join(__dirname, '..');
const BIN = path.join(__dirname, 'bin');
const OUT = path.join(__dirname, 'out');
const MiB = 1024;
const U32 = 2 ** 32;

// ---- options -------------------------------------------------------------------
const argv = process.argv.slice(2);
const has = (f) => argv.includes(f);
const value = (f, d) => (has(f) ? argv[argv.indexOf(f) + 1] : d);
const minutes = Number(value('--minutes', 10));
const opt = {
  server: value('--server', 'addon'),
  seconds: minutes * 60,
  threads: Number(value('--threads', 4)),
  rate: Number(value('--rate', 500)),
  handshakeTimeout: Number(value('--handshake-timeout', 2000)),
  sessionTimeout: Number(value('--session-timeout', 10)),
  cacheSize: Number(value('--cache-size', 100000)),
  seed: value('--seed', ''),
  mix: value('--mix', ''),
  gc: !has('--no-gc'),
  injectLeak: Number(value('--inject-leak', 0)),
};
opt.sample = Number(value('--sample', Math.min(5, Math.max(1, opt.seconds / 60))));
if (!(minutes > 0) || !['addon', 'node'].includes(opt.server) || !(opt.threads >= 1) || !(opt.rate >= 0) || !(opt.sample > 0) ||
    !(opt.handshakeTimeout > 0) || !(opt.sessionTimeout >= 4)) {
  console.error('usage: npm run soak [-- --minutes N] [--server addon|node] [--threads N] [--rate R] [--sample S] ' +
    '[--handshake-timeout MS] [--session-timeout S>=4] [--cache-size N] [--seed N] [--mix kind=w,...] [--no-gc] [--inject-leak BYTES]');
  process.exit(2);
}
const isAddon = opt.server === 'addon';
const log = (s) => process.stderr.write(`soak: ${s}\n`);

// ---- children ------------------------------------------------------------------
const live = new Set();
function track(c) { live.add(c); c.on('exit', () => live.delete(c)); return c; }
process.on('exit', () => { for (const c of live) try { c.kill('SIGKILL'); } catch {} });
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(130));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? +m[1] : NaN;
}

function cpuSeconds(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const v = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (+v[11] + +v[12]) / 100; // utime + stime, USER_HZ ticks
}

// ---- setup ---------------------------------------------------------------------
function setup() {
  ensureTools({ needValgrind: false }, log);
  fs.mkdirSync(BIN, { recursive: true });
  fs.mkdirSync(OUT, { recursive: true });
  const src = path.join(__dirname, 'client.c');
  const bin = path.join(BIN, 'client');
  if (!fs.existsSync(bin) || fs.statSync(bin).mtimeMs < fs.statSync(src).mtimeMs) {
    log('building soak/bin/client');
    execFileSync('cc', ['-O2', '-g', '-Wall', '-pthread', '-o', bin, src, '-lssl', '-lcrypto'], { stdio: 'inherit' });
  }
  const cert = path.join(OUT, 'p256.crt');
  const key = path.join(OUT, 'p256.key');
  if (!fs.existsSync(cert) || !fs.existsSync(key)) {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-days', '365'], { stdio: 'pipe' });
  }
  if (isAddon && !fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) {
    throw new Error('dist/ is not built: run npm ci (or npm run compile) first');
  }
  return { bin, cert, key };
}

// ---- the server child ----------------------------------------------------------
// V8 grows its young generation (two semi-spaces) by doubling, from 1 MiB up to 16 MiB each, when
// scavenges keep finding survivors: under this load that happens at random moments, minutes in,
// and each doubling adds 8-16 MiB of RSS at once, which is not a leak but looks like one. The
// server runs with the semi-space pinned at the size it reaches under load anyway, so the young
// generation is sized (and its pages touched) during warm-up.
const V8_FLAGS = ['--min-semi-space-size=16', '--max-semi-space-size=16'];
function startServer({ cert, key }) {
  return new Promise((resolve, reject) => {
    const c = track(fork(path.join(__dirname, 'server.js'), [
      '--impl', opt.server, '--cert', cert, '--key', key, '--handshake-timeout', String(opt.handshakeTimeout),
      '--session-timeout', String(opt.sessionTimeout), '--cache-size', String(opt.cacheSize),
      '--inject-leak', String(opt.injectLeak),
    ], { execArgv: [...V8_FLAGS, ...(opt.gc ? ['--expose-gc'] : [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    const srv = { child: c, pid: c.pid, waiting: new Map(), nextId: 1, exit: null };
    c.on('exit', (code, sig) => {
      srv.exit = { code, sig };
      for (const w of srv.waiting.values()) w.reject(new Error(`server exited (${code ?? sig})`));
      srv.waiting.clear();
      reject(new Error(`server exited (${code ?? sig}) before it was ready`));
    });
    c.on('message', (m) => {
      if (m.type === 'ready') { srv.port = m.port; resolve(srv); }
      else if (m.type === 'sample' && srv.waiting.has(m.id)) { srv.waiting.get(m.id).resolve(m); srv.waiting.delete(m.id); }
    });
  });
}

// Server stats (after a full GC unless --no-gc), then its RSS and CPU from /proc.
function sample(srv, t, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    if (srv.exit) return reject(new Error(`server exited (${srv.exit.code ?? srv.exit.sig})`));
    const id = srv.nextId++;
    const timer = setTimeout(() => { srv.waiting.delete(id); reject(new Error(`server did not answer a sample in ${timeoutMs} ms`)); }, timeoutMs);
    srv.waiting.set(id, {
      resolve: (m) => {
        clearTimeout(timer);
        resolve({ t, rssKiB: rssKiB(srv.pid), cpuS: cpuSeconds(srv.pid), heapUsedKiB: Math.round(m.memory.heapUsed / 1024),
          heapTotalKiB: Math.round(m.memory.heapTotal / 1024),
          externalKiB: Math.round(m.memory.external / 1024), stats: m.stats, cache: m.cache, clientErrors: m.clientErrors });
      },
      reject: (e) => { clearTimeout(timer); reject(e); },
    });
    srv.child.send({ type: 'sample', id });
  });
}

// ---- the client ----------------------------------------------------------------
function runClient(bin, port) {
  const args = ['--port', String(port), '--seconds', String(opt.seconds), '--threads', String(opt.threads), '--rate', String(opt.rate),
    '--handshake-timeout', String(opt.handshakeTimeout), '--session-max-age', String(opt.sessionTimeout / 2)];
  if (opt.seed) args.push('--seed', opt.seed);
  if (opt.mix) args.push('--mix', opt.mix);
  // The silent thread finishes its last batch: up to the handshake timeout + 5 s after the end.
  const limitMs = (opt.seconds + opt.handshakeTimeout / 1000 + 5 + 60) * 1000;
  return new Promise((resolve) => {
    const c = track(spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    c.stdout.setEncoding('utf8').on('data', (d) => { out += d; });
    c.stderr.setEncoding('utf8').on('data', (d) => { err = (err + d).slice(-4000); });
    const t = setTimeout(() => c.kill('SIGKILL'), limitMs);
    c.on('close', (code, sig) => {
      clearTimeout(t);
      let summary = null;
      try { summary = JSON.parse(out.trim().split('\n').pop()); } catch {}
      resolve({ code, sig, summary, stderr: err });
    });
  });
}

// ---- criteria ------------------------------------------------------------------
const GOOD = ['full12', 'full13', 'resume12', 'resume13', 'forged12', 'reset12', 'reset13'];
const BAD = ['garbage', 'silent', 'partial'];
const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const mib = (kib) => `${(kib / MiB).toFixed(1)} MiB`;

// Least-squares slope of y over x.
function slope(xs, ys) {
  const n = xs.length;
  const mx = sum(xs) / n;
  const my = sum(ys) / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) { sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) ** 2; }
  return sxx ? sxy / sxx : 0;
}

// RSS growth after warm-up. Warm-up is the first third of the load, and at least the session
// timeout + 5 s: until then the session cache is still filling (entries live one timeout, then
// expire), which is legitimate growth. The samples after warm-up are split into an earlier half A
// and a later half B, and the criterion compares the high-water marks: max(B) <= max(A) + tolerance.
// - max, not mean or last: RSS of a healthy process moves up and down (GC, malloc trimming, the
//   cache's expiry sweep every 255 handshakes); its high-water mark settles once the working set
//   has been reached. A leak raises the high-water mark of each later window.
// - halves of the post-warm-up window, not a fit alone: a linear fit over a short noisy series can
//   show a slope from one late spike; the windowed maxima do not. The fitted slope is reported
//   (KiB/min and bytes per connection) to size a failure.
// - a steady load (--rate, 500 connections/s by default) and a pinned V8 young generation (see
//   V8_FLAGS): with them a healthy server's working set is constant after warm-up (cached sessions
//   = rate x session timeout), and its post-warm-up RSS moves by well under 1 MiB between samples
//   taken after a forced GC. Unpaced (--rate 0), the rate follows whatever else runs on the
//   machine, and so does the number of cached sessions: the RSS check is then less reliable.
// - tolerance max(4 MiB, 5 % of max(A)): several times that noise, small enough that a leak of
//   40 bytes per connection is caught in a 10-minute run (500/s x 200 s between the halves = 100,000
//   connections, 4 MB). A 1-minute run catches about 400 bytes per connection (`--inject-leak 1000`
//   fails it); shorter runs only catch big leaks.
function rssCriterion(samples, loadSeconds) {
  const warm = Math.min(loadSeconds, Math.max(loadSeconds / 3, opt.sessionTimeout + 5));
  const post = samples.filter((s) => s.t >= warm && s.t <= loadSeconds + 0.5);
  const mid = warm + (loadSeconds - warm) / 2;
  const A = post.filter((s) => s.t < mid);
  const B = post.filter((s) => s.t >= mid);
  const r = { warmupSeconds: warm, samplesA: A.length, samplesB: B.length };
  if (A.length < 3 || B.length < 3) {
    return { ...r, ok: null, skipped: true,
      detail: `not judged: ${A.length}+${B.length} samples after a ${warm.toFixed(0)} s warm-up (need 3+3: run longer or sample more often)` };
  }
  const maxA = Math.max(...A.map((s) => s.rssKiB));
  const maxB = Math.max(...B.map((s) => s.rssKiB));
  const tol = Math.max(4 * MiB, 0.05 * maxA);
  const kibPerS = slope(post.map((s) => s.t), post.map((s) => s.rssKiB));
  const conns = post[post.length - 1].stats.accepted - post[0].stats.accepted;
  const dt = post[post.length - 1].t - post[0].t;
  const bytesPerConn = conns > 0 ? (kibPerS * dt * 1024) / conns : 0;
  Object.assign(r, { maxAKiB: maxA, maxBKiB: maxB, toleranceKiB: Math.round(tol), slopeKiBPerMin: kibPerS * 60,
    slopeBytesPerConnection: bytesPerConn });
  r.ok = maxB <= maxA + tol;
  r.detail = `max RSS ${mib(maxA)} in ${warm.toFixed(0)}-${mid.toFixed(0)} s, ${mib(maxB)} in ${mid.toFixed(0)}-${loadSeconds.toFixed(0)} s ` +
    `(${maxB >= maxA ? '+' : ''}${mib(maxB - maxA)}, tolerance ${mib(tol)}); fit ${(kibPerS * 60 / MiB).toFixed(2)} MiB/min, ` +
    `${bytesPerConn.toFixed(1)} B/connection`;
  return r;
}

function evaluate({ client, samples, final, drained, loadSeconds, serverDied }) {
  const C = [];
  const add = (name, ok, detail, extra = {}) => C.push({ name, ok, detail, ...extra });
  const k = client ? client.kinds : null;

  if (serverDied) add('server alive', false, serverDied);
  if (!client) {
    add('client completed', false, 'the load client printed no summary');
    return C;
  }

  // Good clients: zero tolerance. Loopback, no limits set, a 2 s handshake timeout that a healthy
  // server under this load never comes near: every failure of a client that did nothing wrong is a
  // server bug (or an overloaded machine, which the report's rates would show).
  const goodAttempted = sum(GOOD.map((n) => k[n].attempted));
  const goodFailed = sum(GOOD.map((n) => k[n].failed));
  add('good clients never fail', goodFailed === 0,
    `${goodFailed} failed of ${goodAttempted} (full, resumed, forged-ID and reset-after-handshake clients)` +
    (goodFailed ? `; first: ${client.errors.filter((e) => GOOD.some((n) => e.startsWith(n + ':')))[0] || '?'}` : ''));

  // Resumption: zero tolerance. A client offers only a session it received on a connection that
  // completed its echo (TLS 1.3 tickets included), less than half the session timeout old, never
  // shared between threads, each TLS 1.3 ticket once; the cache (--cache-size) holds far more than
  // one timeout's worth of sessions, so nothing it offers can legitimately have been evicted or
  // expired. node:tls's session-ID Map cannot resume TLS 1.3 at all: for --server node only TLS 1.2
  // offers are judged.
  const evicted = isAddon && final && final.cache.cacheFull > 0
    ? `; the cache evicted ${final.cache.cacheFull} sessions for lack of room: raise --cache-size` : '';
  const resumeKinds = isAddon ? ['resume12', 'resume13', 'reset12', 'reset13'] : ['resume12', 'reset12'];
  const expected = sum(resumeKinds.map((n) => k[n].expected_resumed));
  const resumed = sum(resumeKinds.map((n) => k[n].resumed));
  add('offered sessions resume', expected === 0 ? null : resumed === expected,
    `${resumed} of ${expected} offered sessions resumed (${resumeKinds.join(', ')})` +
    (expected === 0 ? ': n/a, no session offered (not in the --mix?)' : '') + evicted +
    (isAddon ? '' : `; TLS 1.3 not judged: node:tls with a session-ID Map never resumes it (${k.resume13.resumed + k.reset13.resumed} of ${k.resume13.expected_resumed + k.reset13.expected_resumed})`));
  add('forged session IDs never resume', k.forged12.attempted === 0 ? null : k.forged12.resumed === 0,
    `${k.forged12.resumed} of ${k.forged12.attempted} forged TLS 1.2 session IDs resumed${k.forged12.attempted ? '' : ': n/a, none sent'}`);

  // Bad clients must be closed by the server: silent and half-ClientHello ones by the handshake
  // timeout (between half of it and the timeout + 5 s), non-TLS ones at once.
  const badFailed = sum(BAD.map((n) => k[n].failed));
  add('server closes bad clients', sum(BAD.map((n) => k[n].attempted)) === 0 ? null : badFailed === 0,
    `${badFailed} of ${sum(BAD.map((n) => k[n].attempted))} not closed in time (silent ${k.silent.attempted}, half-ClientHello ${k.partial.attempted}, non-TLS ${k.garbage.attempted})` +
    (badFailed ? `; first: ${client.errors.filter((e) => BAD.some((n) => e.startsWith(n + ':')))[0] || '?'}` : ''));

  const s = final && final.stats;
  if (isAddon && s) {
    const wrapped = (v) => v >= U32 / 2;
    const show = (name) => (wrapped(s[name]) ? `${name} = ${s[name]} (wrapped below zero: ${s[name] - U32})` : `${name} = ${s[name]}`);
    add('counters back to 0', s.connections === 0 && s.pendingHandshakes === 0,
      `${show('connections')}, ${show('pendingHandshakes')} ${drained.ok ? `after ${drained.seconds.toFixed(1)} s` : `still after ${drained.seconds.toFixed(1)} s`} with every client gone`);
    const outcomes = s.handshakes + s.handshakeFailures + s.handshakeTimeouts + s.rejectedMaxConnections + s.rejectedMaxPendingHandshakes;
    add('accounting adds up', outcomes === s.accepted,
      `accepted ${s.accepted} ${outcomes === s.accepted ? '==' : '!='} handshakes ${s.handshakes} + failures ${s.handshakeFailures} + timeouts ${s.handshakeTimeouts} + ` +
      `rejected ${s.rejectedMaxConnections} + ${s.rejectedMaxPendingHandshakes} = ${outcomes}` +
      (outcomes !== s.accepted ? ` (${outcomes > s.accepted ? `${outcomes - s.accepted} sockets counted twice` : `${s.accepted - outcomes} sockets never counted`})` : ''));
  } else if (!isAddon) {
    add('counters back to 0', null, 'n/a for node:tls: its counters are kept by soak/server.js from node:tls events (shown for comparison)');
    add('accounting adds up', null, 'n/a for node:tls (see above)');
  }

  const rss = rssCriterion(samples, loadSeconds);
  add('RSS stable after warm-up', rss.ok, rss.detail, { rss });
  return C;
}

// ---- report --------------------------------------------------------------------
function pad(s, n) { s = String(s); return s.length >= n ? s : s + ' '.repeat(n - s.length); }
function lpad(s, n) { s = String(s); return s.length >= n ? s : ' '.repeat(n - s.length) + s; }

function report(r) {
  const L = [];
  const { client, final, start, samples } = r;
  L.push('');
  L.push(`== soak: ${r.server === 'addon' ? 'addon createServer (SSL_CTX cache)' : 'node:tls + session-ID Map (comparison)'}` +
    ` on 127.0.0.1:${r.port}, ${(r.loadSeconds / 60).toFixed(2)} min of load ==`);
  L.push(`options: ${opt.threads} client threads + 1 silent, ${opt.rate ? `${opt.rate} connections/s` : 'unpaced'}, handshakeTimeout ${opt.handshakeTimeout} ms, sessionTimeout ${opt.sessionTimeout} s, ` +
    `cache ${opt.cacheSize}, samples every ${opt.sample} s${opt.gc ? ' after a full GC' : ''}${opt.mix ? `, mix ${opt.mix}` : ''}` +
    (opt.injectLeak ? `, INJECTED LEAK of ${opt.injectLeak} B per connection (self-test)` : ''));
  L.push(`machine: ${os.cpus().length} × ${os.cpus()[0].model.trim()}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}, node ${process.version} (OpenSSL ${process.versions.openssl})`);
  if (client) {
    L.push(`client: ${client.libssl}, seed ${client.seed}, ${client.connections} connections in ${client.elapsed_s.toFixed(1)} s (${client.conn_per_s.toFixed(0)}/s)` +
      (client.late ? `; ${client.late} started over 1 s behind the ${client.rate}/s schedule (the machine could not keep up)` : ''));
    L.push(`  ${pad('kind', 10)}${lpad('attempted', 10)}${lpad('ok', 9)}${lpad('failed', 8)}${lpad('resumed', 9)}${lpad('offered', 9)}`);
    for (const [n, v] of Object.entries(client.kinds)) {
      L.push(`  ${pad(n, 10)}${lpad(v.attempted, 10)}${lpad(v.ok, 9)}${lpad(v.failed, 8)}${lpad(v.resumed, 9)}${lpad(v.expected_resumed, 9)}`);
    }
    L.push(`  endings of good connections: close_notify ${client.endings.close_notify}, FIN ${client.endings.fin}, RST ${client.endings.rst}`);
    if (client.errors_total) L.push(`  errors (${client.errors_total}): ${client.errors.slice(0, 5).join(' | ')}`);
    if (client.misses_total) L.push(`  resumption misses (${client.misses_total}): ${client.misses.slice(0, 3).join(' | ')}`);
  }
  if (final) {
    const s = final.stats;
    const loadEnd = samples.filter((x) => x.t <= r.loadSeconds + 0.5).pop() || final;
    const hs = loadEnd.stats.handshakes - start.stats.handshakes;
    const cpu = final.cpuS - start.cpuS;
    L.push(`server stats${isAddon ? '' : ' (counted from node:tls events)'}: ${Object.entries(s).map(([a, b]) => `${a} ${b}`).join(', ')}`);
    L.push(`  ${(hs / r.loadSeconds).toFixed(0)} handshakes/s, ${s.handshakes ? ((100 * s.resumed) / s.handshakes).toFixed(1) : 0} % resumed, ` +
      `server CPU ${cpu.toFixed(1)} s (${s.handshakes ? ((1000 * cpu) / s.handshakes).toFixed(3) : '?'} ms per handshake)`);
    L.push(`  cache: ${Object.entries(final.cache).map(([a, b]) => `${a} ${b}`).join(', ')}`);
    const ce = Object.entries(final.clientErrors || {});
    if (ce.length) L.push(`  tlsClientError: ${ce.map(([a, b]) => `${b}× ${a.trim()}`).join('; ')}`);
    if (isAddon && client) {
      // Informational: what the server counted against what the client did.
      const k = client.kinds;
      const cr = sum(Object.values(k).map((v) => v.resumed));
      L.push(`  cross-checks: server resumed ${s.resumed} / client resumed ${cr}; cache misses ${final.cache.misses} / forged offers ${k.forged12.attempted}; ` +
        `timeouts ${s.handshakeTimeouts} / silent+half-ClientHello clients ${k.silent.attempted + k.partial.attempted}; ` +
        `failures ${s.handshakeFailures} / non-TLS clients ${k.garbage.attempted}`);
    }
    if (r.firstWrap) L.push(`  pendingHandshakes first seen wrapped at t=${r.firstWrap.t.toFixed(0)} s: ${r.firstWrap.value}`);
    const rc = r.criteria.find((c) => c.rss);
    const warm = rc && rc.rss.warmupSeconds;
    const atWarm = warm !== undefined ? samples.find((x) => x.t >= warm) : null;
    L.push(`memory (server RSS): start ${mib(start.rssKiB)} (idle), after warm-up ${atWarm ? `${mib(atWarm.rssKiB)} (t=${atWarm.t.toFixed(0)} s)` : '?'}, ` +
      `end of load ${mib(loadEnd.rssKiB)}, after drain ${mib(final.rssKiB)}; peak ${mib(Math.max(...samples.map((x) => x.rssKiB)))}; ` +
      `JS heap used at end ${mib(final.heapUsedKiB)}`);
  }
  L.push('criteria:');
  for (const c of r.criteria) L.push(`  ${c.ok === null ? 'n/a ' : c.ok ? 'PASS' : 'FAIL'}  ${pad(c.name, 32)} ${c.detail}`);
  const failed = r.criteria.filter((c) => c.ok === false);
  L.push(`RESULT: ${failed.length ? `FAIL (${failed.map((c) => c.name).join('; ')})` : 'PASS'}`);
  L.push(`JSON: ${path.relative(process.cwd(), r.jsonPath)}`);
  return L.join('\n');
}

// ---- main ----------------------------------------------------------------------
async function main() {
  const files = setup();
  const srv = await startServer(files);
  log(`${opt.server} server pid ${srv.pid} on port ${srv.port}; ${minutes} min of load`);
  let serverDied = null;
  let stopping = false;
  srv.child.on('exit', (code, sig) => { if (!stopping) serverDied = `server exited (${code ?? sig}) during the soak`; });

  const start = await sample(srv, -1);
  const samples = [];
  let firstWrap = null;
  const t0 = Date.now();
  const elapsed = () => (Date.now() - t0) / 1000;
  const clientDone = runClient(files.bin, srv.port);
  let clientResult = null;
  clientDone.then((c) => { clientResult = c; });

  // Samples while the client runs.
  const every = Math.max(1, Math.round(10 / opt.sample));
  let last = start;
  for (let i = 1; !clientResult && !serverDied; i++) {
    const due = t0 + i * opt.sample * 1000;
    while (!clientResult && Date.now() < due) await sleep(Math.min(100, due - Date.now()));
    if (clientResult || serverDied) break;
    let s;
    try { s = await sample(srv, elapsed()); } catch (e) { serverDied = serverDied || e.message; break; }
    samples.push(s);
    if (!firstWrap && s.stats.pendingHandshakes >= U32 / 2) firstWrap = { t: s.t, value: s.stats.pendingHandshakes };
    if (i % every === 0) {
      const rate = (s.stats.handshakes - last.stats.handshakes) / (s.t - Math.max(0, last.t));
      log(`t=${s.t.toFixed(0)}s rss ${mib(s.rssKiB)} heap ${mib(s.heapUsedKiB)} handshakes ${s.stats.handshakes} (${rate.toFixed(0)}/s) ` +
        `conns ${s.stats.connections}${isAddon ? ` pending ${s.stats.pendingHandshakes}` : ''} cached ${s.cache.number}`);
      last = s;
    }
  }
  const client = await clientDone;
  const loadSeconds = Math.min(opt.seconds, elapsed());
  if (client.code !== 0 || !client.summary) log(`client exited ${client.code ?? client.sig}: ${client.stderr.slice(-1000)}`);

  // Every client is gone: the server's counters must come back to 0. Only open connections can move
  // them, so waiting stops once connections has stayed 0 for 2 s, or after the handshake timeout
  // (the server's linger after its FIN) x 2 + 10 s.
  const drained = { ok: false, seconds: 0 };
  let final = null;
  if (!serverDied) {
    const d0 = Date.now();
    const limit = (opt.handshakeTimeout * 2) / 1000 + 10;
    let zeroSince = null;
    for (;;) {
      let s;
      try { s = await sample(srv, elapsed()); } catch (e) { serverDied = e.message; break; }
      final = s;
      drained.seconds = (Date.now() - d0) / 1000;
      const conns = s.stats.connections;
      const pending = isAddon ? s.stats.pendingHandshakes : 0;
      if (conns === 0 && pending === 0) { drained.ok = true; break; }
      if (conns === 0) zeroSince = zeroSince ?? Date.now(); else zeroSince = null;
      if ((zeroSince && Date.now() - zeroSince >= 2000) || drained.seconds > limit) break;
      await sleep(250);
    }
    if (final) samples.push(final);
  }
  if (!serverDied) {
    stopping = true;
    srv.child.send({ type: 'stop' });
    await new Promise((r) => (srv.exit ? r() : srv.child.once('exit', r)));
  }

  const criteria = evaluate({ client: client.summary, samples, final, drained, loadSeconds, serverDied });
  if (client.code !== 0) criteria.push({ name: 'client completed', ok: false, detail: `client exited ${client.code ?? client.sig}` });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const jsonPath = path.join(OUT, `soak-${opt.server}-${stamp}.json`);
  const result = {
    server: opt.server, port: srv.port, options: opt, loadSeconds,
    machine: { cpus: os.cpus().length, model: os.cpus()[0].model, loadavg: os.loadavg(), node: process.version, openssl: process.versions.openssl },
    client: client.summary, start, final, drained, firstWrap, samples, criteria,
    pass: !criteria.some((c) => c.ok === false),
  };
  fs.writeFileSync(jsonPath, JSON.stringify(result, null, 1));
  console.log(report({ ...result, jsonPath }));
  process.exitCode = result.pass ? 0 : 1;
}

main().catch((e) => { console.error(`soak: ${e.stack || e}`); process.exit(1); });
