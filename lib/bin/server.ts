#!/usr/bin/env node
// The sample server (`npm start`): TLS on a generated certificate with OpenSSL's session cache,
// one line per connection, cache stats on exit. Flags: --port N (4433), --host H (::), --drop,
// --max-version TLSv1.2|TLSv1.3 (default TLSv1.2, see below).
import { parseArgs } from 'node:util';

import { TLSVersion, createServer, generateCertificate, opensslVersion } from '../index';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '4433' },
    host: { type: 'string' },
    drop: { type: 'boolean', default: false },
    // TLS 1.2 by default: `openssl s_client -reconnect`, the classic way to watch a session cache,
    // cannot resume TLS 1.3 with any server (it reconnects before reading the tickets).
    'max-version': { type: 'string', default: 'TLSv1.2' },
  },
});

const { cert, key } = generateCertificate();
const server = createServer(
  {
    cert,
    key,
    uncleanClose: values.drop ? 'drop' : 'keep',
    maxVersion: values['max-version'] as TLSVersion | undefined,
  },
  (conn) => {
    const s = conn.session!;
    const who = `${conn.remoteAddress}:${conn.remotePort}`;
    console.log(`${who} ${s.protocol} ${s.reused ? 'resumed' : 'new    '} session ${s.id.slice(0, 16)}… ${s.cipher}`);
    conn.on('data', (d: Buffer) => conn.write(d)); // echo
    conn.on('error', (err) => console.log(`${who} error: ${err.message}`));
    conn.on('close', (info) => console.log(`${who} closed ${info.clean ? 'cleanly' : 'uncleanly'} (${info.ending})`));
  },
);
server.on('tlsClientError', (err, c) =>
  console.log(`${c.remoteAddress}:${c.remotePort} handshake failed: ${err.reason}`),
);
server.on('error', (err) => {
  console.error(`cannot listen: ${err.message}`);
  process.exit(1);
});
server.listen({ port: Number(values.port), host: values.host }, () => {
  const a = server.address()!;
  const max = values['max-version'];
  console.log(
    `TLS echo server on ${a.address}:${a.port} (${opensslVersion}, up to ${max}), session cache on, tickets off`,
  );
  console.log(`try: openssl s_client -connect localhost:${a.port} -reconnect -no_ticket`);
  if (max === 'TLSv1.2')
    console.log('(TLS 1.2 so that s_client -reconnect can show resumption; --max-version TLSv1.3 for both)');
});

function bye(): void {
  const c = server.context.stats();
  const s = server.stats();
  console.log(
    `\ncache: ${c.number} sessions, ${c.hits} hits, ${c.misses} misses, ${c.timeouts} timeouts, ${c.cacheFull} evicted;` +
      ` server: ${s.handshakes} handshakes (${s.resumed} resumed), ${s.handshakeFailures} failed`,
  );
  process.exit(0);
}
process.on('SIGINT', bye);
process.on('SIGTERM', bye);
