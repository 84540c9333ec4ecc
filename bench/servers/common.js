'use strict';
// Shared plumbing for the server contestants: each is its own process so the
// harness can read its CPU and RSS from /proc/<pid> alone.
//   node <server>.js --port P --cert FILE --key FILE [--mode M]
// Prints "READY <port>" when listening; on SIGTERM prints "STATS {json}" and
// exits 0 (a clean exit, so valgrind/callgrind write their output); on
// SIGUSR2 runs a full GC (when started with --expose-gc) and prints "GCDONE",
// so RSS samples hold live data rather than garbage not yet collected. Servers
// that opt in answer a "STATS" line on stdin with a STATS line (ready() below).
const fs = require('fs');

function parseArgs(argv = process.argv.slice(2)) {
  const o = { port: 0, mode: '' };
  for (let i = 0; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];
  o.port = Number(o.port) || 0;
  o.certPem = fs.readFileSync(o.cert, 'utf8');
  o.keyPem = fs.readFileSync(o.key, 'utf8');
  return o;
}

// Echo everything; answer the peer's end with ours. Errors (peer resets, as
// openssl s_time does) are expected and ignored.
function echo(conn) {
  conn.on('data', (d) => conn.write(d));
  conn.on('end', () => conn.end());
  conn.on('error', () => {});
}

// With { control: true }, a line "STATS" on stdin prints "STATS {json}" at
// once (the store cells read counters before and after each run).
function ready(server, stats = () => ({}), { control = false } = {}) {
  console.log(`READY ${server.address().port}`);
  if (control) {
    require('readline').createInterface({ input: process.stdin }).on('line', (l) => {
      if (l.trim() === 'STATS') console.log(`STATS ${JSON.stringify(stats())}`);
    });
  }
  process.on('SIGTERM', () => {
    console.log(`STATS ${JSON.stringify(stats())}`);
    process.exit(0);
  });
  process.on('SIGUSR2', () => {
    if (global.gc) global.gc();
    console.log('GCDONE');
  });
}

// Times of store GETs as the server sees them (call to answer, microseconds):
// add() each; take() summarizes those since the last take() and starts over.
function timings() {
  let xs = [];
  const q = (s, p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  return {
    add(us) { xs.push(us); },
    take() {
      const s = xs.sort((a, b) => a - b);
      xs = [];
      if (!s.length) return { n: 0 };
      return { n: s.length, p50: q(s, 0.5), p90: q(s, 0.9), p99: q(s, 0.99), mean: s.reduce((a, x) => a + x, 0) / s.length };
    },
  };
}
const since = (t0) => Number(process.hrtime.bigint() - t0) / 1000;

module.exports = { parseArgs, echo, ready, timings, since };
