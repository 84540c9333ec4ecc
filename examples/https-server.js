// HTTPS through Node's HTTP stack on the native transport. Run: node examples/https-server.js
// then: curl -k https://localhost:8443/ https://localhost:8443/again   (one connection, keep-alive)
'use strict';
const http = require('node:http');
const { createServer, generateCertificate } = require('..');

const { cert, key } = generateCertificate();
const app = http.createServer((req, res) => {
  const s = req.socket.session;
  res.end(`${req.url}: ${s.protocol}, session ${s.reused ? 'resumed' : 'new'}\n`);
});
createServer({ cert, key, ALPNProtocols: ['http/1.1'] }, (conn) => app.emit('connection', conn))
  .on('tlsClientError', (err, c) => console.log(`${c.remoteAddress}: ${err.reason}`))
  .listen(8443, () => console.log('https://localhost:8443/'));
