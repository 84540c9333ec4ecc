// Exercises every native object (contexts, both transports, handshake failures, session events,
// cache removal) and tears everything down, for scripts/valgrind-check.sh.
'use strict';
const net = require('node:net');
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
  context.flush();
  await new Promise((r) => server.close(r));
  await new Promise((r) => wrapped.close(r));
  context.removeAllListeners();
  if (global.gc) global.gc();
}

main().then(() => setTimeout(() => process.exit(0), 50));
