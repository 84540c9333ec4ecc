// Writes the NSS key log of every connection to $SSLKEYLOGFILE, for Wireshark ("(Pre)-Master-Secret log
// filename"). Run: SSLKEYLOGFILE=/tmp/keys.log node examples/keylog.js, then e.g.
// curl -k https://localhost:8443/ while capturing on lo. Never in production: these lines decrypt the traffic.
'use strict';
const fs = require('node:fs');
const { createServer, generateCertificate } = require('..');

const file = process.env.SSLKEYLOGFILE;
if (!file) throw new Error('set SSLKEYLOGFILE to the file the key log goes to');
const log = fs.createWriteStream(file, { flags: 'a', mode: 0o600 });

const { cert, key } = generateCertificate();
const server = createServer({ cert, key }, (conn) => {
  conn.on('error', () => {});
  conn.end('hello\n');
});
// Each line is a Buffer in NSS key log format, newline included: append it as it is.
server.on('keylog', (line) => log.write(line));
server.listen(Number(process.env.PORT ?? 8443), () => console.log(`https://localhost:${server.address().port}/`));
