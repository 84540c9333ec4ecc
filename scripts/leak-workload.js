// Exercises every native object (contexts, both transports, handshake failures, session events,
// cache removal, contexts shared across worker threads: the creator exits first, then every holder)
// and tears everything down, for scripts/valgrind-check.sh.
'use strict';
const net = require('node:net');
const { Worker } = require('node:worker_threads');
const tls = require('node:tls');
const osc = require('..');

const { cert, key } = osc.generateCertificate();

function client(port, session, opts = {}) {
  return new Promise((resolve) => {
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, session, ...opts });
    let saved = session;
    s.on('session', (sess) => (saved = sess));
    s.on('secureConnect', () => s.end('ping'));
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => resolve(saved));
  });
}

function garbage(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(Buffer.alloc(300, 7)));
    s.on('error', () => {});
    s.on('close', resolve);
  });
}

async function main() {
  const context = new osc.SecureContext({ cert, key, sessionCacheSize: 8 });
  context.on('sessionAdded', () => {});
  context.on('sessionRemoved', () => {});
  const server = osc.createServer({ context, uncleanClose: 'drop' }, (c) => c.pipe(c));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const port = server.address().port;
  const wrapped = net.createServer((sock) => {
    const c = osc.wrap(sock, { context });
    c.on('error', () => {});
    c.pipe(c);
  });
  await new Promise((r) => wrapped.listen(0, '127.0.0.1', r));
  for (const p of [port, wrapped.address().port]) {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3']) {
      let sess;
      for (let i = 0; i < 4; i++) sess = await client(p, sess, { maxVersion });
      await garbage(p);
    }
  }
  await sharedAcrossThreads();
  context.flush();
  await new Promise((r) => server.close(r));
  await new Promise((r) => wrapped.close(r));
  context.removeAllListeners();
  if (global.gc) global.gc();
}

// A worker creates a context and shares it; a second worker opens it and serves; the creator exits
// first, the second serves on (resuming a session made before), then exits: the context is freed with
// the last holder, and the handle then finds nothing.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const osc = require(${JSON.stringify(require.resolve('..'))});
const context = workerData.handle ? osc.SecureContext.fromShared(workerData.handle) : new osc.SecureContext(workerData.pem);
context.on('sessionAdded', () => {});
const server = osc.createServer({ context }, (c) => c.pipe(c));
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port, handle: context.share() }));
parentPort.on('message', () => server.close(() => process.exit(0)));
`;

function startWorker(workerData) {
  const w = new Worker(WORKER, { eval: true, workerData });
  return new Promise((r) => w.once('message', (m) => r({ w, ...m })));
}

function stopWorker(w) {
  return new Promise((r) => {
    w.once('exit', r);
    w.postMessage('close');
  });
}

async function sharedAcrossThreads() {
  const creator = await startWorker({ pem: { cert, key } });
  const holder = await startWorker({ handle: creator.handle });
  const sess = await client(creator.port, undefined, { maxVersion: 'TLSv1.3' });
  await stopWorker(creator.w);
  await client(holder.port, sess, { maxVersion: 'TLSv1.3' });
  await stopWorker(holder.w);
  try {
    osc.SecureContext.fromShared(holder.handle);
    throw new Error('a released context was found');
  } catch (err) {
    if (err.code !== 'ERR_OSC_SHARED_RELEASED') throw err;
  }
}

main().then(() => setTimeout(() => process.exit(0), 50));
