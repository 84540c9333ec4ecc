'use strict';
// A local redis-server for the store cells: started on a free port on
// 127.0.0.1 (no persistence), stopped after. Also measures what one GET round
// trip costs a client on this machine, the yardstick for the store's latency.
const { spawn, execFileSync } = require('child_process');
const net = require('net');
const { track } = require('./proc');

const HOST = '127.0.0.1';
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, HOST, () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// Nearest-rank quantile of sorted xs.
const q = (xs, p) => xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(p * xs.length) - 1))];

class RedisServer {
  async start() {
    const Redis = require('ioredis');
    this.port = await freePort();
    this.child = track(spawn('redis-server', ['--port', String(this.port), '--bind', HOST, '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.exited = new Promise((r) => this.child.on('exit', r));
    this.child.stdout.resume();
    this.child.stderr.resume();
    this.pid = this.child.pid;
    this.client = new Redis({ host: HOST, port: this.port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    this.client.on('error', () => {}); // refused while it starts; the loop below retries
    const end = Date.now() + 10000;
    for (;;) {
      try {
        await this.client.connect();
        await this.client.ping();
        break;
      } catch (e) {
        this.client.disconnect();
        if (this.child.exitCode !== null || Date.now() > end) throw new Error(`redis-server did not start: ${e.message}`);
        await delay(50);
      }
    }
    this.version = (/redis_version:(\S+)/.exec(await this.client.info('server')) || [])[1];
    return this;
  }

  flush() { return this.client.flushdb(); }
  async keys() { return this.client.dbsize(); }

  // One GET round trip as a node client (ioredis, as the servers use) sees
  // it: n sequential GETs of a value the size of a sealed session, after a
  // warm-up; and the same from redis-benchmark (C, one connection) when it is
  // there. Microseconds. The store section takes one such sample per round
  // of its cells, so the yardstick is measured in the same conditions.
  async getRoundTrip({ n = 2000, valueBytes = 300 } = {}) {
    await this.client.set('bench-rtt', 'x'.repeat(valueBytes));
    for (let i = 0; i < 200; i++) await this.client.getBuffer('bench-rtt');
    const xs = [];
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await this.client.getBuffer('bench-rtt');
      xs.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    xs.sort((a, b) => a - b);
    const ioredis = { n, p50: q(xs, 0.5), p90: q(xs, 0.9), p99: q(xs, 0.99), mean: xs.reduce((a, x) => a + x, 0) / n };
    let benchmark = null;
    try {
      const out = execFileSync('redis-benchmark', ['-h', HOST, '-p', String(this.port), '-t', 'get', '-c', '1', '-n', String(n),
        '-d', String(valueBytes), '--csv'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 }).toString();
      const [head, row] = out.trim().split('\n').slice(-2).map((l) => l.split(',').map((x) => x.replace(/"/g, '')));
      const v = Object.fromEntries(head.map((h, i) => [h, row[i]]));
      benchmark = { n, p50: v.p50_latency_ms * 1000, p99: v.p99_latency_ms * 1000, mean: v.avg_latency_ms * 1000 };
    } catch (e) {
      benchmark = { error: String(e.message).split('\n')[0] };
    }
    await this.client.del('bench-rtt');
    return { ioredis, benchmark };
  }

  async stop() {
    if (this.client) await this.client.quit().catch(() => this.client.disconnect());
    if (!this.child || this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

module.exports = { RedisServer };
