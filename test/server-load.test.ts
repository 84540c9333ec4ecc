// Load: 1000 TLS connections open at the same time, each echoing 1 MiB, every byte verified.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import tls from 'node:tls';

import { HOST, Started, echo, pseudoRandom, startServer, stopServer, until, within } from './server-helpers';

const CONNECTIONS = 1000;
const IN_FLIGHT = 100; // connects at a time
const SIZE = 1024 * 1024;

jest.setTimeout(300000);

let s: Started | undefined;
const clients: tls.TLSSocket[] = [];

afterAll(async () => {
  for (const c of clients) c.destroy();
  await stopServer(s?.server);
});

test(`${CONNECTIONS} concurrent connections each echo ${SIZE} bytes, verified`, async () => {
  let peak = 0;
  s = await startServer({}, (conn) => {
    peak = Math.max(peak, s!.server.stats().connections);
    echo(conn);
  });
  const port = s.port;

  // Connect in waves of IN_FLIGHT handshakes; every connection stays open.
  const t0 = Date.now();
  for (let i = 0; i < CONNECTIONS; i += IN_FLIGHT) {
    const wave: Promise<void>[] = [];
    for (let j = i; j < Math.min(i + IN_FLIGHT, CONNECTIONS); j++) {
      const c = tls.connect({ host: HOST, port, rejectUnauthorized: false });
      clients.push(c);
      wave.push(once(c, 'secureConnect').then(() => undefined));
    }
    await within(Promise.all(wave), 60000, `connections ${i}..${i + IN_FLIGHT - 1}`);
  }
  const connected = Date.now() - t0;
  await until(() => s!.connections.length === CONNECTIONS, 10000, 'the server to see every connection');
  expect(s.server.stats().connections).toBe(CONNECTIONS);
  expect(s.server.stats().pendingHandshakes).toBe(0);
  expect(peak).toBe(CONNECTIONS);

  // Each client sends its own 1 MiB (one shared random block, rotated per client) and checks the
  // echo, byte for byte by hash and length. All 1000 transfer at the same time.
  const base = pseudoRandom(SIZE, 7);
  const t1 = Date.now();
  const results = await within(
    Promise.all(
      clients.map(async (c, i) => {
        const off = (i * 1031) % SIZE;
        const parts = [base.subarray(off), base.subarray(0, off)];
        const want = createHash('sha256').update(parts[0]).update(parts[1]).digest('hex');
        const got = createHash('sha256');
        let received = 0;
        const done = new Promise<void>((resolve, reject) => {
          c.on('data', (d: Buffer) => {
            got.update(d);
            received += d.length;
            if (received >= SIZE) resolve();
          });
          c.on('error', reject);
          c.on('close', () => reject(new Error(`client ${i} closed after ${received} bytes`)));
        });
        for (const p of parts) c.write(p);
        await done;
        return { i, received, ok: got.digest('hex') === want };
      }),
    ),
    240000,
    'every echo',
  );
  const transferred = Date.now() - t1;
  const bad = results.filter((r) => !r.ok || r.received !== SIZE);
  expect(bad).toEqual([]);
  // Still all open: nothing was dropped along the way.
  expect(s.server.stats().connections).toBe(CONNECTIONS);

  // Close from the clients (close_notify) and see the server count go to zero.
  for (const c of clients) c.end();
  await until(() => s!.server.stats().connections === 0, 60000, 'every connection to close');
  const st = s.server.stats();
  expect(st.accepted).toBe(CONNECTIONS);
  expect(st.handshakes).toBe(CONNECTIONS);
  expect(st.handshakeFailures).toBe(0);
  expect(s.connections.every((c) => c.closeInfo?.ending === 'close_notify' && c.closeInfo.clean)).toBe(true);
  console.log(
    `load: ${CONNECTIONS} connections up in ${connected} ms; ${CONNECTIONS} x ${SIZE} bytes echoed in ${transferred} ms`,
  );
});
