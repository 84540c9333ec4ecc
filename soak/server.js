'use strict';
// The soak's server, in its own process (forked by soak/run.js with an IPC
// channel) so /proc/<pid> figures cover the server alone.
//   node --expose-gc soak/server.js --impl addon|node --cert F --key F
//        [--handshake-timeout MS] [--session-timeout S] [--cache-size N] [--inject-leak BYTES]
// Both echo what they receive and answer the peer's end with theirs.
//   addon  createServer from dist/ (OpenSSL's SSL_CTX cache, tickets off).
//   node   node:tls with SSL_OP_NO_TICKET and a session-ID Map through
//          newSession/resumeSession, like bench/servers/node-tls.js (plus
//          expiry after the session timeout): for comparison only. Its "stats" are counted here from node:tls
//          events, not by the server itself.
// --inject-leak BYTES keeps a BYTES-long buffer per secure connection forever: a deliberate leak,
// to check that the soak's RSS criterion catches one (npm run soak -- --inject-leak 200).
// Messages (process.send):
//   -> { type: 'ready', port, impl }
//   <- { type: 'sample', id }   -> { type: 'sample', id, stats, cache, memory, clientErrors }
//                                  (a full GC first when run with --expose-gc)
//   <- { type: 'stop' }         -> closes the listener, then exits 0
const fs = require('fs');
const path = require('path');

const argv = process.argv.slice(2);
const o = {};
for (let i = 0; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];
const impl = o.impl || 'addon';
const cert = fs.readFileSync(o.cert, 'utf8');
const key = fs.readFileSync(o.key, 'utf8');
const handshakeTimeout = Number(o['handshake-timeout'] || 2000);
const sessionTimeout = Number(o['session-timeout'] || 60);
const cacheSize = Number(o['cache-size'] || 100000);
const leakBytes = Number(o['inject-leak'] || 0);
const leaked = [];

// tlsClientError reasons, counted (the first few distinct ones are kept).
const clientErrors = {};
function clientError(err) {
  const reason = String(err.code || '') + ' ' + String(err.reason || err.message || '');
  if (reason in clientErrors || Object.keys(clientErrors).length < 30) clientErrors[reason] = (clientErrors[reason] || 0) + 1;
}

function echo(conn) {
  if (leakBytes) leaked.push(Buffer.alloc(leakBytes, 1));
  conn.on('data', (d) => conn.write(d));
  conn.on('end', () => conn.end());
  conn.on('error', () => {});
}

let server;
let stats;
let cache;

if (impl === 'addon') {
  const osc = require(path.join(__dirname, '..', 'dist'));
  server = osc.createServer({
    cert, key, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', tickets: false,
    handshakeTimeout, sessionTimeout, sessionCacheSize: cacheSize,
  }, echo);
  server.on('tlsClientError', clientError);
  stats = () => server.stats();
  cache = () => server.context.stats();
} else if (impl === 'node') {
  const tls = require('tls');
  const { SSL_OP_NO_TICKET } = require('crypto').constants;
  const map = new Map();
  const c = { accepted: 0, handshakes: 0, resumed: 0, handshakeFailures: 0, handshakeTimeouts: 0, connections: 0 };
  const m = { number: 0, hits: 0, misses: 0, timeouts: 0 };
  server = tls.createServer({
    cert, key, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', secureOptions: SSL_OP_NO_TICKET,
    handshakeTimeout, sessionTimeout,
  }, (conn) => {
    c.handshakes++;
    if (conn.isSessionReused()) c.resumed++;
    echo(conn);
  });
  server.on('connection', (sock) => {
    c.accepted++;
    c.connections++;
    sock.on('close', () => c.connections--);
  });
  // Bounded and expiring like OpenSSL's cache (oldest evicted when full, entries gone after the
  // session timeout), so both servers hold about the same number of sessions. The Map keeps
  // insertion order: the oldest entries are at its front.
  const ttl = sessionTimeout * 1000;
  const expire = (now) => {
    for (const [k, v] of map) {
      if (now - v.t < ttl && map.size < cacheSize) break;
      map.delete(k);
      if (now - v.t >= ttl) m.timeouts++;
    }
  };
  server.on('newSession', (id, data, cb) => {
    const now = Date.now();
    expire(now);
    map.set(id.toString('hex'), { data, t: now });
    cb();
  });
  server.on('resumeSession', (id, cb) => {
    const e = map.get(id.toString('hex'));
    const data = e && Date.now() - e.t < ttl ? e.data : null;
    if (data) m.hits++; else m.misses++;
    cb(null, data);
  });
  // node:tls reports a handshake timeout but leaves the socket open: the application has to destroy
  // it (nodejs/node-v0.x-archive#4383), as every node:tls server that sets handshakeTimeout must.
  server.on('tlsClientError', (err, sock) => {
    if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') c.handshakeTimeouts++;
    else c.handshakeFailures++;
    clientError(err);
    sock.destroy();
  });
  stats = () => ({ ...c });
  cache = () => ({ ...m, number: map.size });
} else {
  throw new Error(`unknown --impl ${impl}`);
}

server.on('error', (e) => { console.error(e); process.exit(1); });
server.listen(0, '127.0.0.1', () => process.send({ type: 'ready', port: server.address().port, impl }));

process.on('message', (msg) => {
  if (msg.type === 'sample') {
    if (global.gc) global.gc();
    process.send({ type: 'sample', id: msg.id, stats: stats(), cache: cache(), memory: process.memoryUsage(), clientErrors });
  } else if (msg.type === 'stop') {
    server.close();
    // Connections are all gone by now (the driver waited); exit without waiting for stragglers.
    setTimeout(() => process.exit(0), 100);
  }
});
process.on('disconnect', () => process.exit(0));
