'use strict';
// Deterministic figure: instructions (Ir) the server spends per resumed
// handshake, from valgrind --tool=callgrind. The same server runs twice, over
// `base` and `base + n` resumed connections (each run has the same start-up,
// priming full handshake and exit); the Ir difference divided by n is the cost
// of one resumed connection: handshake, 1-byte echo and close.
const fs = require('fs');
const path = require('path');
const { Server } = require('./proc');
const { loadgen } = require('./clients');
const { OUT } = require('./setup');

function totalIr(file) {
  const m = /^(?:summary|totals):\s+(\d+)/m.exec(fs.readFileSync(file, 'utf8'));
  if (!m) throw new Error(`no Ir total in ${file}`);
  return Number(m[1]);
}

async function serverIr(contestant, cert, { tls, conns, tag }) {
  const file = path.join(OUT, `callgrind-${contestant.id}-${tag}.out`);
  const [cmd, args] = contestant.cmd(0, cert);
  const server = new Server('valgrind',
    ['--tool=callgrind', '--quiet', `--callgrind-out-file=${file}`, cmd, ...args],
    { label: `${contestant.id} under callgrind`, readyTimeoutMs: 240000 });
  await server.start();
  let exit;
  try {
    const r = await loadgen(server, { tls, mode: 'resume', conns, seconds: 900, timeoutMs: 960000 });
    if (r.failed || r.resumed !== conns) {
      throw new Error(`${contestant.id} TLS ${tls} under callgrind: ${r.resumed}/${conns} resumed, ${r.failed} failed`);
    }
  } finally {
    exit = await server.stop(120000);
  }
  if (exit.code !== 0) throw new Error(`${contestant.id} under callgrind exited with ${exit.code ?? exit.sig}: ${server.stderr.slice(-500)}`);
  return totalIr(file);
}

// valgrind on a busy 2-core machine occasionally dies or writes nothing:
// one retry before calling the figure failed.
async function serverIrRetry(contestant, cert, o) {
  try {
    return await serverIr(contestant, cert, o);
  } catch (e) {
    return serverIr(contestant, cert, o);
  }
}

async function irPerResume(contestant, cert, { tls, base, n }) {
  const a = await serverIrRetry(contestant, cert, { tls, conns: base, tag: `${tls}-a` });
  const b = await serverIrRetry(contestant, cert, { tls, conns: base + n, tag: `${tls}-b` });
  return { tls, n, base, irBase: a, irLoaded: b, irPerHandshake: Math.round((b - a) / n) };
}

module.exports = { irPerResume };
