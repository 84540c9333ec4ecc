'use strict';
// Sessions across processes: cluster workers, each with its own SecureContext (its own internal cache),
// resume each other's sessions through Redis. Every worker answers with its pid, so reconnecting with
// a saved session shows "Reused" whichever worker is hit:
//
//   redis-server --port 6379 &           # or any Redis/Valkey you have
//   node examples/redis-cluster.js
//   openssl s_client -connect localhost:4433 -tls1_2 -sess_out /tmp/s.pem </dev/null
//   openssl s_client -connect localhost:4433 -tls1_2 -sess_in /tmp/s.pem </dev/null | grep Reused
//
// OSC_STORE_KEY (64 hex chars) must be the same in every process and machine that shares sessions.
const cluster = require('node:cluster');
const crypto = require('node:crypto');
const os = require('node:os');
const Redis = require('ioredis');
const { RedisStore, SecureContext, createServer, generateCertificate } = require('..');

if (cluster.isPrimary) {
  // One certificate and one key for every worker (in production: your certificate files).
  process.env.OSC_CERT ??= JSON.stringify(generateCertificate());
  process.env.OSC_STORE_KEY ??= crypto.randomBytes(32).toString('hex');
  for (let i = 0; i < Math.min(os.availableParallelism(), 4); i++) cluster.fork();
} else {
  const { cert, key } = JSON.parse(process.env.OSC_CERT);
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  const context = new SecureContext({
    cert,
    key,
    serviceName: 'example',
    store: new RedisStore(redis),
    storeKey: Buffer.from(process.env.OSC_STORE_KEY, 'hex'),
  });
  context.on('storeError', (err) => console.warn(`worker ${process.pid}: store: ${err.message}`));
  createServer({ context }, (conn) => {
    console.log(`worker ${process.pid}: ${conn.session.reused ? 'resumed' : 'new session'}`);
    conn.end(`served by ${process.pid}\n`);
  }).listen(4433, () => console.log(`worker ${process.pid} on :4433`));
}
