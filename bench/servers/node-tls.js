'use strict';
// node:tls contestants.
//   --mode tickets    node defaults: stateless TLS tickets, no server cache.
//                     (Under cluster, node shares the first worker's ticket keys
//                     with every worker on the same address: tickets resume on
//                     any worker.)
//   --mode tickets-pp tickets with per-process keys: as `tickets`, but opts out
//                     of cluster's ticket-key sharing (as separate processes,
//                     or hosts, without a shared key would have).
//   --mode sessionid  the documented Node way to cache on the server:
//                     SSL_OP_NO_TICKET + newSession/resumeSession over a Map
//                     (bounded like OpenSSL's default cache, oldest dropped).
//   --mode redis      the same events over Redis (ioredis), the documented Node
//                     way to share sessions between processes: newSession does
//                     SET key data EX 300 and calls back when it is stored,
//                     resumeSession does GET and calls back with the answer.
//                     Needs --redis-port; answers "STATS" on stdin.
//                     (node:tls has no internal server cache with these
//                     events: every resumption asks Redis.)
const tls = require('tls');
const { SSL_OP_NO_TICKET } = require('crypto').constants;
const { parseArgs, echo, ready, timings, since } = require('./common');

const o = parseArgs();
const MAX = 20480;
const cache = new Map();
const stats = { number: 0, hits: 0, misses: 0, connections: 0, reused: 0 };
const opts = { cert: o.certPem, key: o.keyPem, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' };
if (o.mode === 'sessionid' || o.mode === 'redis') opts.secureOptions = SSL_OP_NO_TICKET;
// node derives the default session id context from process.argv: processes
// that share sessions must set the same one (a session of another context is
// looked up, found, and not resumed).
if (o.mode === 'redis') opts.sessionIdContext = 'bench-store';
if (!['tickets', 'tickets-pp', 'sessionid', 'redis'].includes(o.mode)) throw new Error(`unknown --mode ${o.mode}`);

// Under cluster (cluster.js), count each worker's share of the connections.
const counted = (conn) => {
  stats.connections++;
  if (conn.isSessionReused()) stats.reused++;
  echo(conn);
};
const server = tls.createServer(opts, require('cluster').isWorker ? counted : echo);
// cluster hands every worker the first worker's ticket keys through this hook
// (lib/_tls_wrap.js _setServerData); a no-op keeps this process's own keys.
if (o.mode === 'tickets-pp') server._setServerData = () => {};
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
let redis = null;
const gets = timings(); // GET round trips as this process sees them (STATS getUs)
if (o.mode === 'redis') {
  const Redis = require('ioredis');
  redis = new Redis({ host: '127.0.0.1', port: Number(o['redis-port']), maxRetriesPerRequest: 1 });
  Object.assign(stats, { writes: 0, errors: 0 });
  const key = (id) => `node-sess:${id.toString('hex')}`;
  server.on('newSession', (id, data, cb) => {
    redis.set(key(id), data, 'EX', 300).then(() => { stats.writes++; cb(); }, () => { stats.errors++; cb(); });
  });
  server.on('resumeSession', (id, cb) => {
    const t0 = process.hrtime.bigint();
    redis.getBuffer(key(id)).then((data) => {
      gets.add(since(t0));
      if (data) stats.hits++; else stats.misses++;
      cb(null, data || null);
    }, () => { stats.errors++; cb(null, null); });
  });
}
server.on('tlsClientError', () => {});
const listen = () => server.listen(o.port, '127.0.0.1', () =>
  ready(server, () => ({ ...stats, number: cache.size, mode: o.mode,
    ticketKeys: o.mode === 'sessionid' || o.mode === 'redis' ? undefined : server.getTicketKeys().toString('hex').slice(0, 16),
    ...(redis ? { getUs: gets.take() } : {}) }),
  { control: o.mode === 'redis' }));
if (redis) redis.once('ready', listen); else listen();
