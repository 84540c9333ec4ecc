'use strict';
// The two clients. Each call returns one measured run:
//   { connections, resumed, failed, seconds, serverCpu, clientCpu, bytes }
// with server CPU sampled from /proc around the timed phase only (loadgen adds
// `hs`: the client-observed handshake latency, and `watchCpu`: the CPU of the
// other processes it was asked to watch, e.g. redis-server, in the same window).
const path = require('path');
const { run, machineBusySeconds, cpuSeconds } = require('./proc');

const BIN = path.join(__dirname, '..', 'bin');

// openssl s_time, TLS 1.2: -new (full) or -reuse (one full, then resumed).
// It measures only its own user time, so it runs under sh, which prints its
// waited-for children's CPU (s_time's utime+stime) from /proc afterwards.
async function sTime(server, { reuse, seconds, tls = '1.2' }) {
  const script = '"$@" </dev/null; echo; echo CHILDSTAT $(cat /proc/$$/stat)';
  const args = ['-c', script, 'sh', 'openssl', 's_time', '-connect', `127.0.0.1:${server.port}`,
    reuse ? '-reuse' : '-new', `-tls${tls.replace('.', '_')}`, '-time', String(seconds)];
  const c0 = server.cpu();
  const t0 = process.hrtime.bigint();
  const out = await run('sh', args, { timeoutMs: (seconds + 30) * 1000 });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const serverCpu = server.cpu() - c0;
  const m = /(\d+) connections in [\d.]+s;/.exec(out);
  if (!m) throw new Error(`s_time printed no count:\n${out.slice(-500)}`);
  const stat = /CHILDSTAT .*\) (.*)/.exec(out)[1].split(' ');
  const connections = +m[1];
  // -reuse prints one 'r' per resumed connection after "starting".
  const marks = reuse ? out.slice(out.indexOf('starting') + 8, out.indexOf('connections in')) : '';
  return {
    connections,
    resumed: (marks.match(/r/g) || []).length,
    failed: 0,
    seconds: wall,
    serverCpu,
    clientCpu: (+stat[13] + +stat[14]) / 100,
    bytes: 0,
  };
}

// bench/bin/loadgen (see loadgen.c). With --sync it primes its sessions first,
// so the server's CPU is sampled around the timed connections only.
// from: the port of the server that issues the sessions (--mode resume-fresh);
// watch: { name: pid } of other processes whose CPU to sample like the server's.
// request: bytes of the request in --mode rr; onPrimed: called (synchronously) once the client has
// primed its sessions, right before the timed connections (callgrind zeroes its counters there).
async function loadgen(server, { tls, mode, conns, seconds, concurrency = 1, bytes, hold, timeoutMs, from, request,
  onPrimed, watch = {} }) {
  const args = ['--port', String(server.port), '--tls', tls, '--mode', mode, '--conns', String(conns),
    '--time', String(seconds), '--concurrency', String(concurrency), '--sync'];
  if (request) args.push('--request', String(request));
  if (bytes) args.push('--bytes', String(bytes));
  if (hold) args.push('--hold', String(hold));
  if (from) args.push('--from', String(from));
  const watched = () => Object.fromEntries(Object.entries(watch).map(([k, pid]) => [k, cpuSeconds(pid).self]));
  let w0;
  let c0;
  let m0;
  let b0;
  let held = null;
  const out = await run(path.join(BIN, 'loadgen'), args, {
    timeoutMs: timeoutMs || (seconds + 60) * 1000,
    onLine(l, child) {
      if (l === 'PRIMED') { if (onPrimed) onPrimed(); ({ total: c0, main: m0 } = server.cpuSplit()); w0 = watched(); b0 = machineBusySeconds(); child.stdin.write('GO\n'); }
      else if (l.startsWith('HOLDING')) {
        held = { connections: +l.split(' ')[1], rssKiB: server.rss() };
        child.stdin.end(); // let it close the connections
      }
    },
  });
  const c1 = server.cpuSplit();
  const w1 = watched();
  const busy = machineBusySeconds() - b0;
  const serverCpu = c1.total - c0;
  const j = JSON.parse(out.trim().split('\n').pop());
  return {
    connections: j.connections,
    resumed: j.resumed,
    failed: j.failed,
    // rr: connections whose server closed without close_notify (also in failed)
    unclean: j.unclean || 0,
    seconds: j.elapsed_s,
    serverCpu,
    // under cluster: the primary's share (the rest is the workers')
    serverCpuMain: c1.main - m0,
    clientCpu: j.cpu_s,
    // CPU of everything else on the machine during the run (other work, the harness)
    otherCpu: Math.max(0, busy - serverCpu - j.cpu_s),
    bytes: j.bytes,
    protocol: j.protocol,
    cipher: j.cipher,
    held,
    // client-observed latency of the timed connections, microseconds (TCP connect + TLS handshake)
    hs: j.hs_us,
    watchCpu: Object.fromEntries(Object.keys(watch).map((k) => [k, w1[k] - w0[k]])),
  };
}

module.exports = { sTime, loadgen };
