// Backpressure both ways through the native transport: a slow-reading client holds the server's
// writes back (write() false, then 'drain'), and a paused server connection stops reading its socket.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import tls from 'node:tls';

import { TLSConnection } from '../lib';
import {
  Started,
  connectTls,
  delay,
  pseudoRandom,
  sha256,
  startServer,
  stopServer,
  until,
  within,
} from './server-helpers';

jest.setTimeout(120000);

// More than every buffer on the path can hold (loopback socket buffers here reach ~36 MiB at most).
const TOTAL = 64 * 1024 * 1024;
const CHUNK = 64 * 1024;

let s: Started | undefined;
let client: tls.TLSSocket | undefined;
let data: Buffer;

beforeAll(() => {
  data = pseudoRandom(TOTAL, 1234);
});

afterEach(async () => {
  client?.destroy();
  client = undefined;
  await stopServer(s?.server);
  s = undefined;
});

/** Waits until `value()` has not changed for `quietMs` (bounded by `ms`). */
async function settled(value: () => number, quietMs: number, ms: number): Promise<number> {
  const end = Date.now() + ms;
  let last = value();
  let since = Date.now();
  while (Date.now() < end) {
    await delay(50);
    const v = value();
    if (v !== last) {
      last = v;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return v;
  }
  return value();
}

test.each([['TLSv1.2' as const], ['TLSv1.3' as const]])(
  '%s: slow reader: server write() returns false, drain follows once the client reads, bytes in order',
  async (version) => {
    let written = 0;
    let falses = 0;
    let drains = 0;
    let drainsWhileClientPaused = 0;
    let clientReading = false;
    let serverConn: TLSConnection | undefined;
    const serverDone = new Promise<void>((resolve, reject) => {
      void (async () => {
        const started = await startServer({ minVersion: version, maxVersion: version }, (conn) => {
          serverConn = conn;
          conn.on('drain', () => {
            drains++;
            if (!clientReading) drainsWhileClientPaused++;
          });
          // Write until write() says stop, wait for 'drain', go on: what any well-behaved producer does.
          const pump = async () => {
            while (written < TOTAL) {
              const ok = conn.write(data.subarray(written, written + CHUNK));
              written += CHUNK;
              if (!ok) {
                falses++;
                await within(once(conn, 'drain'), 60000, 'drain');
              }
            }
            conn.end();
          };
          pump().then(resolve, reject);
        });
        s = started;
        startedResolve();
      })().catch(reject);
    });
    let startedResolve!: () => void;
    await new Promise<void>((r) => (startedResolve = r));

    client = await connectTls({ port: s!.port });
    client.pause(); // not reading: the kernel buffers fill, then the server's queue
    const c = client;

    await until(() => falses > 0, 20000, 'server write() to return false');
    // Let the server run into the full pipe; it must be stuck well before the end.
    const stuckAt = await settled(() => written, 500, 20000);
    expect(stuckAt).toBeLessThan(TOTAL);
    expect(serverConn!.writableNeedDrain).toBe(true);

    // Now read everything and check it arrives complete and in order.
    const h = createHash('sha256');
    let received = 0;
    const ended = new Promise<void>((resolve, reject) => {
      c.on('end', () => resolve());
      c.on('error', reject);
    });
    c.on('data', (d: Buffer) => {
      h.update(d);
      received += d.length;
    });
    clientReading = true;
    c.resume();
    await within(Promise.all([ended, serverDone]), 60000, 'all data');
    expect(received).toBe(TOTAL);
    expect(h.digest('hex')).toBe(sha256(data));
    expect(falses).toBeGreaterThan(0);
    expect(drains).toBeGreaterThan(0);
    expect(drainsWhileClientPaused).toBeLessThan(drains); // drains came once the client read
    expect(written).toBe(TOTAL);
  },
);

test('paused server connection stops reading; resume gets every byte in order', async () => {
  let serverConn: TLSConnection | undefined;
  s = await startServer({}, (conn) => {
    serverConn = conn;
    conn.pause();
  });
  client = await connectTls({ port: s.port });
  await until(() => serverConn !== undefined, 5000, 'the server connection');
  const conn = serverConn!;

  // The client pushes 64 MiB at once; node buffers what the socket does not take.
  let clientFalse = false;
  for (let off = 0; off < TOTAL; off += CHUNK) {
    if (!client.write(data.subarray(off, off + CHUNK))) clientFalse = true;
  }
  expect(clientFalse).toBe(true);
  const c = client;
  const pending = await settled(() => c.writableLength, 500, 20000);
  // The server stopped reading: lots of the data is still queued in the client, and the server
  // holds only a bounded amount in its readable buffer.
  expect(pending).toBeGreaterThan(0);
  expect(TOTAL - pending).toBeLessThan(48 * 1024 * 1024);
  expect(conn.readableLength).toBeLessThan(1024 * 1024);
  expect(conn.isPaused()).toBe(true);

  const h = createHash('sha256');
  let received = 0;
  let onData!: (d: Buffer) => void;
  const all = new Promise<void>((resolve) => {
    onData = (d: Buffer) => {
      h.update(d);
      received += d.length;
      if (received >= TOTAL) resolve();
    };
    conn.on('data', onData);
  });
  conn.resume();
  await within(all, 60000, 'every byte at the server');
  expect(received).toBe(TOTAL);
  expect(h.digest('hex')).toBe(sha256(data));
  await until(() => c.writableLength === 0, 10000, 'client buffer to empty');
  conn.off('data', onData);

  // Pause/resume again mid-stream: the connection still works both ways.
  conn.pause();
  const echoBack = new Promise<Buffer>((resolve) => c.once('data', resolve));
  conn.once('data', (d: Buffer) => conn.write(d));
  c.write('ping');
  await delay(100);
  conn.resume();
  expect((await within(echoBack, 10000, 'echo')).toString()).toBe('ping');
});
