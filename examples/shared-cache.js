// Two servers, one SecureContext: a session made on one port resumes on the other.
// Run: node examples/shared-cache.js
'use strict';
const tls = require('node:tls');
const { createServer, SecureContext, generateCertificate } = require('..');

const context = new SecureContext({ ...generateCertificate(), maxVersion: 'TLSv1.2' });
context.on('sessionAdded', (id) => console.log('cached', id.slice(0, 16)));
const a = createServer({ context }, (c) => c.end());
const b = createServer({ context }, (c) => c.end());

function connect(port, session) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, session }, () => {
      console.log(`port ${port}: ${s.isSessionReused() ? 'resumed' : 'full handshake'}`);
    });
    let saved;
    s.on('session', (sess) => (saved = sess)); // node:tls hands the session over in this event
    s.on('error', reject);
    s.on('data', () => {});
    s.on('close', () => resolve(saved));
  });
}

a.listen(0, '127.0.0.1', () =>
  b.listen(0, '127.0.0.1', async () => {
    const session = await connect(a.address().port);
    await connect(b.address().port, session);
    console.log('cache:', context.stats());
    a.close();
    b.close();
  }),
);
