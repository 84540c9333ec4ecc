// Counters are invariants: each moves on exactly one state transition of a connection. After any mix of
// clients, once every connection is gone, `connections` and `pendingHandshakes` are 0 and every accepted
// socket is accounted for exactly once. (Issue: a client that finished its handshake and reset at once
// was closed — pending decremented — and then counted as a success — decremented again: the unsigned
// counter wrapped to ~4.29e9 and maxPendingHandshakes refused every later client.)
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';

import type { Server, ServerStats } from '../lib';
import {
  HOST,
  PLATFORM,
  closedBy,
  connectRaw,
  connectTls,
  delay,
  echo,
  echoes,
  run,
  until,
  useServerFixture,
  within,
} from './server-helpers';

const fx = useServerFixture();

/** Completes a handshake and resets at once, before reading anything (the server's last flight fails). */
async function handshakeThenReset(port: number, version: tls.SecureVersion): Promise<void> {
  const raw = net.connect({ host: HOST, port });
  raw.on('error', () => undefined);
  const socket = tls.connect({ socket: raw, rejectUnauthorized: false, minVersion: version, maxVersion: version });
  socket.on('error', () => undefined);
  await within(new Promise<void>((resolve) => socket.once('secureConnect', () => resolve())), 10000, 'secureConnect');
  raw.resetAndDestroy();
}

function accountedFor(s: ServerStats): number {
  return (
    s.handshakes + s.handshakeFailures + s.handshakeTimeouts + s.rejectedMaxConnections + s.rejectedMaxPendingHandshakes
  );
}

/** A raw TCP client that ignores its own errors (the server resets some of them). */
async function raw(port: number): Promise<net.Socket> {
  const r = await connectRaw(port);
  r.on('error', () => undefined);
  return r;
}

/** A good client still gets through: nobody is locked out. */
async function expectServed(port: number): Promise<void> {
  const good = await connectTls({ port });
  await echoes(good, 'still served');
  good.destroy();
}

async function settled(server: Server): Promise<ServerStats> {
  await until(() => server.stats().connections === 0, 10000, 'every connection to close');
  return server.stats();
}

test.each(['1.3', '1.2'])(
  'TLS %s clients whose last flight arrives with their reset: pendingHandshakes stays exact, nobody is locked out',
  async (version) => {
    const s = await fx.start({ maxPendingHandshakes: 2 }, echo);
    // Keep the server's loop busy most of the time, so that each client's last flight and its RST are both
    // waiting when the server reads: the handshake completes, and the server's next write fails at once.
    const blocker = setInterval(() => {
      const end = Date.now() + 20;
      while (Date.now() < end);
    }, 1);
    let r;
    try {
      r = await run(
        PLATFORM.python,
        [path.join(__dirname, 'fixtures', 'handshake-then-reset.py'), String(s.port), '20', version],
        {
          timeoutMs: 30000,
        },
      );
    } finally {
      clearInterval(blocker);
    }
    expect(r.stdout.trim()).toBe('done 20');
    const st = await settled(s.server);
    expect(st).toMatchObject({ accepted: 20, connections: 0, pendingHandshakes: 0, rejectedMaxPendingHandshakes: 0 });
    // Each is one completed handshake or one failure, never both.
    expect(st.handshakes + st.handshakeFailures).toBe(20);
    expect(accountedFor(st)).toBe(st.accepted);
    await expectServed(s.port);
  },
);

test('Node clients that reset right after secureConnect, TLS 1.2 and 1.3: counters exact, later clients served', async () => {
  const s = await fx.start({ maxPendingHandshakes: 2 }, echo);
  for (let i = 0; i < 20; i++) await handshakeThenReset(s.port, i % 2 ? 'TLSv1.2' : 'TLSv1.3');
  const st = await settled(s.server);
  expect(st).toMatchObject({ accepted: 20, connections: 0, pendingHandshakes: 0 });
  expect(st.handshakes + st.handshakeFailures).toBe(20);
  expect(accountedFor(st)).toBe(st.accepted);
  await expectServed(s.port);
});

test('a mix of good, broken, silent and resetting clients: every accepted socket accounted for once, counters back to 0', async () => {
  const s = await fx.start({ maxPendingHandshakes: 8, maxConnections: 20, handshakeTimeout: 300 }, echo);
  const errors: string[] = [];
  s.server.on('tlsClientError', (err) => errors.push(err.code));
  const jobs: Array<Promise<unknown>> = [];
  for (let i = 0; i < 6; i++) {
    const v = i % 2 ? 'TLSv1.2' : 'TLSv1.3';
    // good, served and closed with close_notify
    jobs.push(
      connectTls({ port: s.port, maxVersion: v }).then(async (c) => {
        c.on('error', () => undefined);
        await echoes(c, `hello ${i}`);
        c.end();
        await closedBy(c as unknown as net.Socket, 10000);
      }),
    );
    jobs.push(handshakeThenReset(s.port, v));
    // garbage, FIN mid-handshake, RST mid-handshake, silent (timed out)
    jobs.push(
      raw(s.port).then((r) => {
        r.write('GET / HTTP/1.1\r\n\r\n');
        return closedBy(r, 10000);
      }),
    );
    jobs.push(
      raw(s.port).then((r) => {
        r.end(Buffer.from([0x16, 0x03, 0x01, 0x00]));
        return closedBy(r, 10000);
      }),
    );
    jobs.push(
      raw(s.port).then(async (r) => {
        r.write(Buffer.from([0x16, 0x03, 0x01]));
        await delay(20);
        r.resetAndDestroy();
      }),
    );
    jobs.push(raw(s.port).then((r) => closedBy(r, 10000)));
  }
  await within(Promise.allSettled(jobs), 30000, 'the clients');
  const st = await settled(s.server);
  expect(st).toMatchObject({ connections: 0, pendingHandshakes: 0 });
  expect(accountedFor(st)).toBe(st.accepted);
  expect(st.accepted).toBe(36);
  expect(st.handshakeTimeouts).toBeGreaterThan(0);
  expect(st.handshakeFailures).toBeGreaterThan(0);
  // Every failure and timeout was reported once to JS too (rejections are not client errors).
  expect(errors.length).toBe(st.handshakeFailures + st.handshakeTimeouts);
  await expectServed(s.port);
});

test('closeAllConnections() during handshakes and open connections: counted once, back to 0', async () => {
  const s = await fx.start({}, echo);
  const open = await Promise.all([connectTls({ port: s.port }), connectTls({ port: s.port, maxVersion: 'TLSv1.2' })]);
  const silent = await Promise.all([connectRaw(s.port), connectRaw(s.port)]);
  await until(() => s.server.stats().pendingHandshakes === 2, 5000, 'two pending handshakes');
  s.server.closeAllConnections();
  s.server.closeAllConnections(); // twice: a no-op
  const st = await settled(s.server);
  expect(st).toMatchObject({ connections: 0, pendingHandshakes: 0, handshakes: 2, handshakeFailures: 2, accepted: 4 });
  for (const c of open) c.destroy();
  for (const r of silent) r.destroy();
});
