'use strict';
// The addon with a second tier: OpenSSL's internal cache first, a shared
// session store on Redis (RedisStore over ioredis) behind it. Two processes
// of this script with the same certificate, serviceName and storeKey resume
// each other's sessions through Redis (the store cells run one as the
// "writer" that issues sessions and measure the other).
//   --redis-port P   the local redis-server the harness started
//   --store-key HEX  32 bytes (64 hex digits), the same in every process
// Answers "STATS" on stdin with the context's counters (stats().store: hits,
// misses, ...), so the harness can check every run's lookups, and `getUs`:
// how long the store's GETs took as this process saw them (a thin wrapper
// around RedisStore.get, since the last STATS).
const path = require('path');
const Redis = require('ioredis');
const { parseArgs, echo, ready, timings, since } = require('./common');

const osc = require(path.join(__dirname, '..', '..', 'dist'));
const o = parseArgs();
const redis = new Redis({ host: '127.0.0.1', port: Number(o['redis-port']), maxRetriesPerRequest: 1 });
const gets = timings();
function timed(store) {
  return {
    async get(key) {
      const t0 = process.hrtime.bigint();
      try { return await store.get(key); } finally { gets.add(since(t0)); }
    },
    set: (key, value, ttl) => store.set(key, value, ttl),
    delete: (key) => store.delete(key),
  };
}
const context = new osc.SecureContext({
  cert: o.certPem,
  key: o.keyPem,
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.3',
  serviceName: 'bench-store',
  store: timed(new osc.RedisStore(redis)),
  storeKey: Buffer.from(o['store-key'], 'hex'),
  // storeTimeout: the default, 50 ms (a timeout would show as a store miss)
});
context.on('storeError', (e) => console.error(`store: ${e.message}`));
const server = osc.createServer({ context }, echo);
server.on('error', (e) => { console.error(e); process.exit(1); });
redis.once('ready', () => {
  server.listen(o.port, '127.0.0.1', () => {
    console.log('IMPL server');
    ready(server, () => ({ impl: 'server', ...context.stats(), getUs: gets.take() }), { control: true });
  });
});
