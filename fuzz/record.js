#!/usr/bin/env node
// Records what real TLS clients send to a server and writes it as the fuzzer's seed corpus
// (fuzz/corpus/, in the framing of fuzz/engine_fuzzer.cc), plus a few synthetic seeds for the
// harness's in-process client mode (fuzz/seeds/).
//
//   npm run compile && node fuzz/record.js
//
// Each client (openssl s_client, Node's tls.connect, curl when installed) talks to this project's own
// server (wrap() over net, echoing, with the fixed certificates of fuzz/certs/) through a plain TCP
// proxy that captures the client's bytes. Bytes the client sends between two replies of the server
// form one flight, one frame of the corpus file. Flights after the first depend on the server's
// random, so when replayed they fail the Finished check: that is expected, they still exercise parsing.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');

const { SecureContext, wrap } = require('..');

const HOST = '127.0.0.1';
const certs = path.join(__dirname, 'certs');
const pem = (name) => fs.readFileSync(path.join(certs, name), 'utf8');
const CA = pem('ca.pem');
const CLIENT = { cert: pem('client.pem'), key: pem('client.key') };
const corpusDir = path.join(__dirname, 'corpus');
const seedsDir = path.join(__dirname, 'seeds');

// Byte 0 of an input: the server context (see fuzz/engine_fuzzer.cc).
const SRV = { REQUIRE_CERT: 0x01, OPTIONAL_CERT: 0x02, TLS12: 0x04, TLS13: 0x08, TICKETS: 0x10, ALPN: 0x20, DROP: 0x40, ECHO: 0x80 };
// Byte 1: how the harness runs it.
const RUN = { EOF: 0, RESET: 1, ERROR: 2, LOCAL: 3, LIVE: 0x04, RESUME: 0x08, CLIENT_CERT: 0x10, EVENTS: 0x20, ALPN: 0x40, SNI: 0x80 };
// Frame ops.
const OP = { SEND: 0, RAW: 1, SERVER_WRITE: 2, SERVER_SHUTDOWN: 3, CLIENT_CLOSE: 4, KEY_UPDATE: 5, FINISH: 6 };

/** SecureContext options for byte 0, as the harness configures its ContextCore. */
function contextOptions(server) {
  const verify = server & 3;
  const versions = (server >> 2) & 3;
  return {
    cert: pem('server.pem') + CA,
    key: pem('server.key'),
    ...(verify === 1 || verify === 2 ? { ca: CA, requestCert: true, rejectUnauthorized: verify === 1 } : {}),
    ...(versions === 1 ? { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } : {}),
    ...(versions === 2 ? { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } : {}),
    tickets: (server & SRV.TICKETS) !== 0,
    ...(server & SRV.ALPN ? { ALPNProtocols: ['h2', 'http/1.1'] } : {}),
    sessionCacheSize: 64,
  };
}

function frame(op, data) {
  const head = Buffer.alloc(3);
  head[0] = op;
  head.writeUInt16BE(data.length, 1);
  return Buffer.concat([head, data]);
}

function encode(server, run, frames) {
  return Buffer.concat([Buffer.from([server, run]), ...frames.map(([op, data]) => frame(op, Buffer.from(data)))]);
}

/** The backend (this project's server) and the capturing proxy in front of it. */
class Recorder {
  constructor() {
    this.recordings = [];
    this.context = null;
    this.server = 0;
  }

  async start() {
    this.backend = net.createServer((socket) => {
      const conn = wrap(socket, { context: this.context, uncleanClose: this.server & SRV.DROP ? 'drop' : 'keep' });
      conn.on('error', () => undefined);
      if (this.server & SRV.ECHO) conn.pipe(conn);
      else conn.resume();
    });
    this.proxy = net.createServer((client) => {
      const rec = { flights: [], serverSpoke: true, closed: null };
      let done;
      rec.closed = new Promise((r) => (done = r));
      this.recordings.push(rec);
      const upstream = net.connect({ port: this.backendPort, host: HOST });
      let open = 2;
      const closed = () => --open === 0 && done();
      client.on('data', (d) => {
        if (rec.serverSpoke) rec.flights.push([]);
        rec.serverSpoke = false;
        rec.flights[rec.flights.length - 1].push(d);
        upstream.write(d);
      });
      upstream.on('data', (d) => {
        rec.serverSpoke = true;
        if (client.writable) client.write(d);
      });
      client.on('end', () => upstream.end());
      upstream.on('end', () => client.end());
      for (const [a, b] of [[client, upstream], [upstream, client]]) {
        a.on('error', () => b.destroy());
        a.on('close', () => {
          b.destroy();
          closed();
        });
      }
    });
    const listen = (srv) => new Promise((r) => srv.listen(0, HOST, () => r(srv.address().port)));
    this.backendPort = await listen(this.backend);
    this.port = await listen(this.proxy);
  }

  /** Serves with the context of `server` (one per value, so that resumptions find their sessions). */
  use(server) {
    this.server = server;
    this.contexts ??= new Map();
    if (!this.contexts.has(server)) this.contexts.set(server, new SecureContext(contextOptions(server)));
    this.context = this.contexts.get(server);
  }

  /** Runs `client` and returns the flights of each connection it made. */
  async record(client) {
    const first = this.recordings.length;
    await client(this.port);
    const recs = this.recordings.slice(first);
    await within(Promise.all(recs.map((r) => r.closed)), 10000, 'proxied connections to close');
    return recs.map((r) => r.flights.map((chunks) => Buffer.concat(chunks)));
  }

  async stop() {
    await Promise.all([this.proxy, this.backend].map((s) => new Promise((r) => s.close(() => r()))));
  }
}

function within(p, ms, what) {
  let timer;
  const t = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** openssl s_client: connects, sends a request after the handshake (and tickets), closes on stdin EOF. */
function sClient(args) {
  return (port) =>
    new Promise((resolve, reject) => {
      const child = spawn('openssl', ['s_client', '-connect', `${HOST}:${port}`, '-servername', 'localhost',
        '-CAfile', path.join(certs, 'ca.pem'), '-quiet', '-no_ign_eof', ...args], { stdio: ['pipe', 'ignore', 'ignore'] });
      const killer = setTimeout(() => child.kill('SIGKILL'), 10000);
      setTimeout(() => child.stdin.end('GET / HTTP/1.0\r\n\r\n'), 300);
      child.stdin.on('error', () => undefined);
      child.on('error', reject);
      child.on('close', () => {
        clearTimeout(killer);
        resolve();
      });
    });
}

/** Node's TLS client: one request, waits for the echo, closes with close_notify; resolves the session. */
function nodeClient(options = {}) {
  return (port) =>
    new Promise((resolve) => {
      let session;
      const socket = tls.connect({ port, host: HOST, ca: CA, servername: 'localhost', ...options });
      const killer = setTimeout(() => socket.destroy(), 10000);
      socket.on('session', (s) => (session = s));
      socket.on('secureConnect', () => socket.write('GET / HTTP/1.0\r\n\r\n'));
      socket.on('data', () => setTimeout(() => socket.end(), 100)); // let TLS 1.3 tickets arrive
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(killer);
        resolve(session);
      });
    });
}

function curl(args) {
  return (port) =>
    new Promise((resolve) => {
      const child = spawn('curl', ['-s', '-o', '/dev/null', '--max-time', '3', '--cacert', path.join(certs, 'ca.pem'),
        '--resolve', `localhost:${port}:${HOST}`, ...args, `https://localhost:${port}/`], { stdio: 'ignore' });
      child.on('error', () => resolve());
      child.on('close', () => resolve());
    });
}

function hasCommand(cmd) {
  return new Promise((resolve) => {
    const child = spawn(cmd, ['--version'], { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'osc-record-'));
  const sess = path.join(tmp, 'session.pem');
  const certArgs = ['-cert', path.join(certs, 'client.pem'), '-key', path.join(certs, 'client.key')];
  const E = SRV.ECHO;
  // [file name, server byte, client] or, for Node clients that resume, [name, server byte, null, options]:
  // those connect twice, and the full handshake and the resumption are recorded as two files.
  const scenarios = [
    ['openssl-tls13', E, sClient(['-tls1_3', '-sess_out', sess])],
    ['openssl-tls13-resume', E, sClient(['-tls1_3', '-sess_in', sess])],
    ['openssl-tls12', E, sClient(['-tls1_2', '-sess_out', sess])],
    ['openssl-tls12-resume', E, sClient(['-tls1_2', '-sess_in', sess])],
    ['openssl-tls12-ticket', E | SRV.TICKETS, sClient(['-tls1_2', '-sess_out', sess])],
    ['openssl-tls12-ticket-resume', E | SRV.TICKETS, sClient(['-tls1_2', '-sess_in', sess])],
    ['openssl-tls13-ticket', E | SRV.TICKETS, sClient(['-tls1_3', '-sess_out', sess])],
    ['openssl-tls13-ticket-resume', E | SRV.TICKETS, sClient(['-tls1_3', '-sess_in', sess])],
    ['openssl-tls13-clientcert', E | SRV.REQUIRE_CERT, sClient(['-tls1_3', ...certArgs])],
    ['openssl-tls12-clientcert', E | SRV.REQUIRE_CERT, sClient(['-tls1_2', ...certArgs])],
    ['openssl-tls13-nocert-required', E | SRV.REQUIRE_CERT, sClient(['-tls1_3'])],
    ['openssl-tls12-clientcert-optional', E | SRV.OPTIONAL_CERT, sClient(['-tls1_2', ...certArgs])],
    ['openssl-tls13-alpn', E | SRV.ALPN, sClient(['-alpn', 'h2,http/1.1'])],
    ['openssl-tls12-only-server', E | SRV.TLS12, sClient([])],
    ['openssl-tls12-cbc', E, sClient(['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA256'])],
    ['openssl-tls12-chacha', E, sClient(['-tls1_2', '-cipher', 'ECDHE-ECDSA-CHACHA20-POLY1305'])],
    ['openssl-tls13-chacha-p384', E, sClient(['-tls1_3', '-ciphersuites', 'TLS_CHACHA20_POLY1305_SHA256', '-groups', 'P-384'])],
    ['node-tls13', E, null, {}],
    ['node-tls12', E, null, { maxVersion: 'TLSv1.2' }],
    ['node-tls13-clientcert', E | SRV.REQUIRE_CERT, nodeClient(CLIENT)],
    ['node-tls12-clientcert-optional', E | SRV.OPTIONAL_CERT, nodeClient({ ...CLIENT, maxVersion: 'TLSv1.2' })],
    ['node-tls13-alpn', E | SRV.ALPN, nodeClient({ ALPNProtocols: ['h2', 'http/1.1'] })],
    ['node-tls12-ticket', E | SRV.TICKETS, null, { maxVersion: 'TLSv1.2' }],
  ];
  if (await hasCommand('curl')) {
    scenarios.push(['curl-tls13', E, curl(['--tlsv1.3'])], ['curl-tls12', E, curl(['--tlsv1.2', '--tls-max', '1.2'])]);
  } else {
    process.stderr.write('record: curl not installed, skipping its recordings\n');
  }

  const rec = new Recorder();
  await rec.start();
  const files = new Map();
  try {
    for (const [name, server, client, resumeOptions] of scenarios) {
      rec.use(server);
      const write = (file, flights) => {
        if (flights.length === 0) throw new Error(`${file}: the client sent nothing`);
        files.set(file, encode(server, RUN.EOF, flights.map((f) => [OP.SEND, f])));
      };
      if (!client) {
        // Node: connect, then resume with the session it got.
        let session;
        const [full] = await rec.record(async (port) => {
          session = await nodeClient(resumeOptions)(port);
        });
        write(name, full);
        if (!session) throw new Error(`${name}: no session to resume`);
        const [again] = await rec.record((port) => nodeClient({ ...resumeOptions, session })(port));
        write(`${name}-resume`, again);
      } else {
        const recordings = await rec.record(client);
        if (recordings.length !== 1) throw new Error(`${name}: ${recordings.length} connections`);
        write(name, recordings[0]);
      }
      await delay(20);
    }
  } finally {
    await rec.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  fs.rmSync(corpusDir, { recursive: true, force: true });
  fs.mkdirSync(corpusDir, { recursive: true });
  for (const [name, bytes] of files) fs.writeFileSync(path.join(corpusDir, name), bytes);
  writeSeeds();
  const sizes = [...files.values()].map((b) => b.length);
  process.stderr.write(`record: ${files.size} files in fuzz/corpus (${Math.min(...sizes)}-${Math.max(...sizes)} bytes), seeds in fuzz/seeds\n`);
}

/** Synthetic seeds for the live mode: the in-process client handshakes, the frames drive what follows. */
function writeSeeds() {
  const E = SRV.ECHO;
  const req = 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n';
  const seeds = {
    'live-tls13-echo': encode(E, RUN.LIVE | RUN.SNI, [[OP.SEND, req], [OP.SERVER_WRITE, 'HTTP/1.1 200 OK\r\n\r\n'], [OP.CLIENT_CLOSE, '']]),
    'live-tls12-server-close': encode(E | SRV.TLS12, RUN.LIVE | RUN.EOF, [[OP.SEND, req], [OP.SERVER_SHUTDOWN, ''], [OP.SEND, 'late']]),
    'live-tls13-resume-drop-reset': encode(E | SRV.DROP, RUN.LIVE | RUN.RESUME | RUN.RESET, [[OP.SEND, req]]),
    'live-tls12-resume-keep-eof': encode(E | SRV.TLS12, RUN.LIVE | RUN.RESUME | RUN.EOF | RUN.EVENTS, [[OP.SEND, req]]),
    'live-tls13-tickets-resume': encode(E | SRV.TICKETS, RUN.LIVE | RUN.RESUME | RUN.LOCAL, [[OP.SEND, req], [OP.CLIENT_CLOSE, '']]),
    'live-tls13-clientcert-keyupdate': encode(E | SRV.REQUIRE_CERT, RUN.LIVE | RUN.CLIENT_CERT | RUN.ERROR,
      [[OP.KEY_UPDATE, [1]], [OP.SEND, req], [OP.SERVER_WRITE, 'ok'], [OP.KEY_UPDATE, [0]], [OP.SEND, 'again']]),
    'live-tls13-nocert-required': encode(E | SRV.REQUIRE_CERT, RUN.LIVE, [[OP.SEND, req]]),
    'live-tls12-clientcert-optional': encode(E | SRV.OPTIONAL_CERT | SRV.TLS12, RUN.LIVE | RUN.CLIENT_CERT | RUN.RESUME, [[OP.SEND, req]]),
    'live-alpn-events': encode(E | SRV.ALPN, RUN.LIVE | RUN.ALPN | RUN.SNI | RUN.EVENTS | RUN.RESUME | RUN.LOCAL, [[OP.SEND, req], [OP.FINISH, [0]], [OP.SEND, req]]),
    'live-alpn-refused': encode(E | SRV.ALPN, RUN.LIVE, [[OP.SEND, req]]),
    'live-tls13-garbage-record': encode(E, RUN.LIVE, [[OP.RAW, Buffer.from('170303000501020304ff', 'hex')], [OP.SEND, req]]),
    'live-tls13-alert-record': encode(E, RUN.LIVE, [[OP.RAW, Buffer.from('15030300020100', 'hex')]]),
  };
  fs.rmSync(seedsDir, { recursive: true, force: true });
  fs.mkdirSync(seedsDir, { recursive: true });
  for (const [name, bytes] of Object.entries(seeds)) fs.writeFileSync(path.join(seedsDir, name), bytes);
}

module.exports = { contextOptions, encode, SRV, RUN, OP };

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`record: ${err.stack || err}\n`);
      process.exit(1);
    },
  );
}
