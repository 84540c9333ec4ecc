'use strict';
// A contestant under node:cluster: the primary forks N workers that each run one of the
// single-process servers (node-tls.js or addon.js) on the same port, so each worker has its
// own session cache / ticket keys. Connections are spread by cluster's scheduling (round-robin
// in the primary on Linux unless NODE_CLUSTER_SCHED_POLICY=none).
//   node cluster.js --workers N --server node-tls.js|addon.js --port P --cert F --key F --mode M
// Prints "PIDS <worker pid>..." (the harness sums the CPU of the primary and every worker),
// "IMPL ..." and "READY <port>" once every worker listens. On SIGTERM it stops the workers,
// collects their STATS and prints "STATS {primary, workers: [...]}" before exiting 0.
const cluster = require('cluster');
const path = require('path');

const argv = process.argv.slice(2);
const arg = (k, d) => (argv.includes(k) ? argv[argv.indexOf(k) + 1] : d);
const n = Number(arg('--workers', 2));
const script = arg('--server');
const rest = [];
for (let i = 0; i < argv.length; i += 2) if (argv[i] !== '--workers' && argv[i] !== '--server') rest.push(argv[i], argv[i + 1]);

cluster.setupPrimary({ exec: path.join(__dirname, script), args: rest, silent: true });
const workers = [];
let stopping = false;
let impl = '';
let port = 0;
let listening = 0;
for (let i = 0; i < n; i++) {
  const w = cluster.fork();
  const rec = { pid: w.process.pid, stats: null, stderr: '' };
  workers.push(rec);
  let buf = '';
  w.process.stdout.setEncoding('utf8');
  w.process.stdout.on('data', (d) => {
    buf += d;
    let k;
    while ((k = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, k);
      buf = buf.slice(k + 1);
      const [key, ...v] = line.split(' ');
      if (key === 'READY') {
        port = +v[0];
        if (++listening === n) {
          console.log(`PIDS ${workers.map((x) => x.pid).join(' ')}`);
          console.log(`IMPL cluster:${n}${impl ? `:${impl}` : ''}`);
          console.log(`READY ${port}`);
        }
      } else if (key === 'IMPL') impl = v.join(' ');
      else if (key === 'STATS') { try { rec.stats = JSON.parse(v.join(' ')); } catch {} }
      else if (key === 'GCDONE') rec.gc = true;
    }
  });
  w.process.stderr.pipe(process.stderr);
  w.on('exit', (code, sig) => {
    rec.exit = code ?? sig;
    if (!stopping) { console.error(`worker ${rec.pid} exited (${rec.exit})`); process.exit(1); }
    if (workers.every((x) => x.exit !== undefined)) {
      console.log(`STATS ${JSON.stringify({ impl: `cluster:${n}`, workers: workers.map(({ pid, stats }) => ({ pid, ...stats })) })}`);
      process.exit(0);
    }
  });
}

process.on('SIGTERM', () => {
  stopping = true;
  for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
});
// Full GC in every worker (memory cells): forward, answer once all did.
process.on('SIGUSR2', () => {
  for (const r of workers) r.gc = false;
  for (const w of Object.values(cluster.workers)) w.process.kill('SIGUSR2');
  const t = setInterval(() => { if (workers.every((r) => r.gc)) { clearInterval(t); console.log('GCDONE'); } }, 5);
});
