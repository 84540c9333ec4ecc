'use strict';
// The addon's contestant: OpenSSL's own SSL_CTX session cache, tickets off.
// Uses osc.createServer (native server) when the package exports it, else
// osc.wrap over a node:net server; the IMPL line (and "impl" in STATS) says
// which one ran.
//   --mode auto|server|wrap   (auto: createServer if present)
const net = require('net');
const path = require('path');
const { parseArgs, echo, ready } = require('./common');

const osc = require(path.join(__dirname, '..', '..', 'dist'));
const o = parseArgs();
const opts = { cert: o.certPem, key: o.keyPem, tickets: false, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' };
const mode = o.mode && o.mode !== 'auto' ? o.mode : typeof osc.createServer === 'function' ? 'server' : 'wrap';

let server;
let context;
if (mode === 'server') {
  server = osc.createServer(opts, echo);
  context = server.context;
} else if (mode === 'wrap') {
  context = new osc.SecureContext(opts);
  server = net.createServer((sock) => {
    sock.on('error', () => {});
    echo(osc.wrap(sock, { context }));
  });
} else {
  throw new Error(`unknown --mode ${mode}`);
}
server.on('error', (e) => { console.error(e); process.exit(1); });
server.listen(o.port, '127.0.0.1', () => {
  console.log(`IMPL ${mode}`); // before READY, so the harness has it at start
  ready(server, () => ({ impl: mode, ...(context && context.stats ? context.stats() : {}) }));
});
