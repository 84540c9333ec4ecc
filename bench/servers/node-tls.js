'use strict';
// node:tls contestants.
//   --mode tickets    node defaults: stateless TLS tickets, no server cache.
//   --mode sessionid  the documented Node way to cache on the server:
//                     SSL_OP_NO_TICKET + newSession/resumeSession over a Map
//                     (bounded like OpenSSL's default cache, oldest dropped).
const tls = require('tls');
const { SSL_OP_NO_TICKET } = require('crypto').constants;
const { parseArgs, echo, ready } = require('./common');

const o = parseArgs();
const MAX = 20480;
const cache = new Map();
const stats = { number: 0, hits: 0, misses: 0 };
const opts = { cert: o.certPem, key: o.keyPem, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' };
if (o.mode === 'sessionid') opts.secureOptions = SSL_OP_NO_TICKET;
else if (o.mode !== 'tickets') throw new Error(`unknown --mode ${o.mode}`);

const server = tls.createServer(opts, echo);
if (o.mode === 'sessionid') {
  server.on('newSession', (id, data, cb) => {
    if (cache.size >= MAX) cache.delete(cache.keys().next().value);
    cache.set(id.toString('hex'), data);
    cb();
  });
  server.on('resumeSession', (id, cb) => {
    const data = cache.get(id.toString('hex'));
    if (data) stats.hits++; else stats.misses++;
    cb(null, data || null);
  });
}
server.on('tlsClientError', () => {});
server.listen(o.port, '127.0.0.1', () =>
  ready(server, () => ({ ...stats, number: cache.size, mode: o.mode })));
