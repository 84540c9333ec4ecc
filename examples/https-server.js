// HTTP/1.1 and HTTP/2 on one port (by ALPN) over the native TLS transport. Run: node examples/https-server.js
// then: curl -k --http2 https://localhost:8443/        -> HTTP/2.0 ...
//       curl -k --http1.1 https://localhost:8443/ https://localhost:8443/again   (one connection, keep-alive)
'use strict';
const { createHttpsServer, generateCertificate } = require('..');

const { cert, key } = generateCertificate();
const server = createHttpsServer({ cert, key }, (req, res) => {
  const s = req.socket; // the tls.TLSSocket reading surface, for HTTP/1.1 and HTTP/2 alike
  res.end(`${req.url}: HTTP/${req.httpVersion}, ${s.getProtocol()}, session ${s.isSessionReused() ? 'resumed' : 'new'}\n`);
});
server.on('tlsClientError', (err, c) => console.log(`${c.remoteAddress}: ${err.reason}`));
server.listen(8443, () => console.log('https://localhost:8443/'));
process.on('SIGINT', () => server.close(() => process.exit(0)));
