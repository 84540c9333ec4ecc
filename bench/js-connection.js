#!/usr/bin/env node
'use strict';
// The JavaScript of one connection alone: a TLSConnection driven the way the native server drives a
// resumed request/reply/close connection (secure with the first request, the echo handler's write, the
// peer's close_notify, end, close), over a transport that does nothing, in a tight loop. No native
// code, no sockets: what the stream machinery itself costs, hot in the caches. Compare with the V8 and
// N-API share per connection that `npm run bench:perf` samples in the real server.
//   node bench/js-connection.js [connections (200000)]
const { TLSConnection } = require('../dist');

const N = Number(process.argv[2] || 200000);
const request = Buffer.alloc(100, 1);
const transport = {
  write(chunks, cb) { cb(); },
  end(cb) { cb(); this.conn._onClose([0, true]); },
  pause() {},
  resume() {},
  destroy() { return undefined; },
  setShutdown() {},
  getShutdown() { return 0; },
};

function connection(done) {
  const conn = new TLSConnection();
  const t = Object.create(transport);
  t.conn = conn;
  conn.attach(t);
  conn._onSecure(() => ({}));
  conn.on('data', (d) => conn.write(d)); // bench/servers/common.js's echo
  conn.on('error', () => {});
  conn.on('close', done);
  conn._onData(request);
  setImmediate(() => conn._onEnd()); // the close_notify comes in a later event loop turn
}

function run(n, then) {
  let i = 0;
  const next = () => (++i > n ? then() : connection(next));
  next();
}

run(N / 4, () => { // warm-up: the JIT
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  run(N, () => {
    const c = process.cpuUsage(c0);
    const wall = Number(process.hrtime.bigint() - t0) / 1e3;
    console.log(`${N} connections: ${((c.user + c.system) / N).toFixed(2)} µs CPU, ${(wall / N).toFixed(2)} µs wall per connection ` +
      '(TLSConnection, its events and the echo; no native code, no sockets)');
  });
});
