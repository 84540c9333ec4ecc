'use strict';
// The addon on N worker threads, one port (SO_REUSEPORT), one SSL_CTX session cache:
// createServer({ threads: N, handler: echo-handler.js }). One process, so /proc/<pid> covers every
// thread. STATS carries the summed counters, each thread's and the shared cache's.
//   node addon-threads.js --port P --cert F --key F --threads N
const path = require('path');
const { parseArgs, ready } = require('./common');

const osc = require(path.join(__dirname, '..', '..', 'dist'));
const o = parseArgs();
const threads = Number(o.threads || 2);
const server = osc.createServer({ cert: o.certPem, key: o.keyPem, tickets: false, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3',
  threads, handler: path.join(__dirname, 'echo-handler.js') });
server.on('error', (e) => { console.error(e); process.exit(1); });
server.on('threadError', (e, i) => console.error(`thread ${i}:`, e));
server.listen(o.port, '127.0.0.1', () => {
  console.log(`IMPL threads:${threads}`);
  ready(server, () => ({ impl: `threads:${threads}`, ...server.stats(),
    perThread: server.threadStats().map((s) => s.handshakes), cache: server.context.stats() }));
});
