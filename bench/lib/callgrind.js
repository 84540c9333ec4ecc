'use strict';
// Deterministic figures: instructions (Ir, every thread of the server process) per connection, from
// valgrind --tool=callgrind. One server process per figure: after `warm` untimed connections of the
// same kind (JIT, lazy init, allocator growth), the harness zeroes callgrind's counters through
// valgrind's gdbserver (`vgdb --pid P zero`) at the moment the load generator has primed its session
// (after 5 s idle, for V8's background compiler), runs `n` connections, and has callgrind dump
// (`vgdb dump`): the dump's total, less what V8's background optimizing compiler spent in it (jitIr
// below), divided by n is the steady-state cost of one connection, start-up, warm-up and exit left out.
//   mode 'hs': a resumed TLS 1.2 handshake and a hang-up (loadgen --mode hs, what s_time does)
//   mode 'rr': resume, one request, its reply, close_notify both ways (loadgen --mode rr)
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { Server } = require('./proc');
const { loadgen } = require('./clients');
const { OUT } = require('./setup');

function totalIr(file) {
  const m = /^(?:summary|totals):\s+(\d+)/m.exec(fs.readFileSync(file, 'utf8'));
  if (!m) throw new Error(`no Ir total in ${file}`);
  return Number(m[1]);
}

// V8's optimizing compiler on its background threads: under valgrind, which runs one thread at a
// time, it lags far behind and still compiles hot functions for the first time thousands of
// connections in. A warm-up cost, not a per-connection one: counted apart (inclusive Ir of its task).
const JIT_TASK = 'v8::internal::OptimizingCompileDispatcher::CompileTask::RunInternal()';
function jitIr(file) {
  let out;
  try {
    out = execFileSync('callgrind_annotate', ['--inclusive=yes', '--threshold=100', file], { maxBuffer: 256 << 20 }).toString();
  } catch {
    return 0;
  }
  const line = out.split('\n').find((l) => l.includes(JIT_TASK));
  return line ? Number(line.trim().split(/\s+/)[0].replace(/,/g, '')) : 0;
}

const vgdb = (pid, cmd) => execFileSync('vgdb', [`--pid=${pid}`, cmd], { stdio: 'pipe', timeout: 120000 });

async function serverIr(contestant, cert, { tls, mode, warm, n, request }) {
  const file = path.join(OUT, `callgrind-${contestant.id}-${mode}-${tls}.out`);
  for (const f of fs.readdirSync(OUT)) if (f.startsWith(path.basename(file))) fs.rmSync(path.join(OUT, f));
  const [cmd, args] = contestant.cmd(0, cert);
  const server = new Server('valgrind',
    ['--tool=callgrind', '--quiet', '--vgdb=yes', `--callgrind-out-file=${file}`, cmd, ...args],
    { label: `${contestant.id} under callgrind`, readyTimeoutMs: 240000 });
  await server.start();
  let exit;
  let r;
  try {
    const run = (conns, onPrimed) => loadgen(server, { tls, mode, conns, seconds: 900, timeoutMs: 960000, request, onPrimed });
    const w = await run(warm);
    if (w.failed) throw new Error(`warm-up: ${w.failed} connections failed`);
    // An idle moment: valgrind runs one thread at a time, so V8's compiler threads catch up on the
    // optimizations the warm-up queued while the server is idle, not during the counted connections.
    await new Promise((r) => setTimeout(r, 5000));
    r = await run(n, () => vgdb(server.pid, 'zero'));
    vgdb(server.pid, 'dump');
    if (r.failed || r.resumed !== n || r.connections !== n) {
      throw new Error(`${contestant.id} TLS ${tls} ${mode} under callgrind: ${r.resumed}/${r.connections} resumed of ${n}, ${r.failed} failed`);
    }
  } finally {
    exit = await server.stop(120000);
  }
  if (exit.code !== 0) throw new Error(`${contestant.id} under callgrind exited with ${exit.code ?? exit.sig}: ${server.stderr.slice(-500)}`);
  const dump = `${file}.1`;
  if (!fs.existsSync(dump)) throw new Error(`callgrind wrote no dump (${dump})`);
  return { ir: totalIr(dump), jit: jitIr(dump) };
}

// valgrind on a busy 2-core machine occasionally dies or writes nothing:
// one retry before calling the figure failed.
async function irPerConnection(contestant, cert, o) {
  let r;
  try {
    r = await serverIr(contestant, cert, o);
  } catch (e) {
    r = await serverIr(contestant, cert, o);
  }
  return { tls: o.tls, mode: o.mode, n: o.n, warm: o.warm, ir: r.ir, irJit: r.jit,
    irPerConnection: Math.round((r.ir - r.jit) / o.n), jitPerConnection: Math.round(r.jit / o.n) };
}

module.exports = { irPerConnection };
