// Server limits: handshake timeout, maxConnections, maxPendingHandshakes.
import tls from 'node:tls';

import { TLSError } from '../lib';
import {
  HOST,
  closedBy,
  collectTlsClientErrors,
  connectRaw,
  connectTls,
  echo,
  echoes,
  until,
  useServerFixture,
  within,
} from './server-helpers';

jest.setTimeout(60000);

const fx = useServerFixture({ clientHello: true });
const { sockets } = fx;

beforeAll(() => {
  expect(fx.hello[0]).toBe(0x16); // handshake record
  expect(fx.hello.length).toBeGreaterThan(100);
});

/** Did a tls client get through? Resolves 'secure' or the error code/'closed'. */
async function tryTls(port: number): Promise<string> {
  const c = tls.connect({ host: HOST, port, rejectUnauthorized: false });
  sockets.push(c);
  return within(
    new Promise<string>((resolve) => {
      c.once('secureConnect', () => resolve('secure'));
      c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      c.once('close', () => resolve('closed'));
    }),
    10000,
    'tls outcome',
  );
}

describe('handshakeTimeout', () => {
  test.each([
    ['sends nothing', () => Buffer.alloc(0)],
    ['sends only a record header', () => fx.hello.subarray(0, 5)],
    ['sends the first 20 bytes of a ClientHello', () => fx.hello.subarray(0, 20)],
    ['sends all but the last byte of a ClientHello', () => fx.hello.subarray(0, fx.hello.length - 1)],
  ])('a client that %s is timed out and closed', async (_name, bytes) => {
    const s = await fx.start({ handshakeTimeout: 300 });
    const errors = collectTlsClientErrors(s.server);
    const raw = await connectRaw(s.port);
    sockets.push(raw);
    const localPort = raw.localPort;
    const b = bytes();
    if (b.length > 0) raw.write(b);
    await until(() => s.server.stats().pendingHandshakes === 1, 5000, 'a pending handshake');
    expect(s.server.stats().connections).toBe(1);

    await closedBy(raw, 10000); // the server closed it
    await until(() => errors.length === 1, 5000, 'tlsClientError');
    const { err, client } = errors[0];
    expect(err).toBeInstanceOf(TLSError);
    expect(err.code).toBe('ERR_OSC_HANDSHAKE_TIMEOUT');
    expect(err.reason).toBe('handshake timed out');
    expect(client).toEqual({ remoteAddress: '127.0.0.1', remotePort: localPort });
    const st = s.server.stats();
    expect(st.handshakeTimeouts).toBe(1);
    expect(st.handshakeFailures).toBe(0);
    expect(st.handshakes).toBe(0);
    expect(st.connections).toBe(0);
    expect(st.pendingHandshakes).toBe(0);

    // The server goes on serving.
    const ok = await connectTls({ port: s.port });
    sockets.push(ok);
    await until(() => s.server.stats().handshakes === 1, 5000, 'the next handshake at the server');
  });

  test('a client that completes its handshake in time is not affected', async () => {
    const s = await fx.start({ handshakeTimeout: 2000 }, echo);
    const errors = collectTlsClientErrors(s.server);
    const c = await connectTls({ port: s.port });
    sockets.push(c);
    // Idle well past the handshake timeout: only the handshake is timed.
    await new Promise((r) => setTimeout(r, 2500));
    await echoes(c, 'still here');
    expect(errors).toHaveLength(0);
    expect(s.server.stats().handshakeTimeouts).toBe(0);
  });
});

describe('maxConnections', () => {
  test('the connection over the limit is closed at once and counted', async () => {
    const s = await fx.start({ maxConnections: 2 }, echo);
    const a = await connectTls({ port: s.port });
    const b = await connectTls({ port: s.port });
    sockets.push(a, b);
    await until(() => s.server.stats().connections === 2, 5000, 'two connections');

    // A raw TCP connect gets through the kernel's accept, then the server closes it.
    const raw = await connectRaw(s.port);
    sockets.push(raw);
    await closedBy(raw, 10000);
    expect(s.server.stats().rejectedMaxConnections).toBe(1);

    // A TLS client over the limit fails.
    expect(await tryTls(s.port)).not.toBe('secure');
    expect(s.server.stats().rejectedMaxConnections).toBe(2);
    let st = s.server.stats();
    expect(st.connections).toBe(2);
    expect(st.handshakes).toBe(2);
    expect(st.accepted).toBe(4);

    // The first two still work.
    await echoes(a, 'a');

    // Below the limit again, a new connection is served.
    b.end();
    await until(() => s.server.stats().connections === 1, 5000, 'one connection');
    expect(await tryTls(s.port)).toBe('secure');
    st = s.server.stats();
    expect(st.rejectedMaxConnections).toBe(2);
    expect(st.connections).toBe(2);
  });

  test('handshaking connections count too', async () => {
    const s = await fx.start({ maxConnections: 1, handshakeTimeout: 0 });
    const idle = await connectRaw(s.port);
    sockets.push(idle);
    await until(() => s.server.stats().pendingHandshakes === 1, 5000, 'a pending handshake');
    expect(await tryTls(s.port)).not.toBe('secure');
    expect(s.server.stats().rejectedMaxConnections).toBe(1);
  });
});

describe('maxPendingHandshakes', () => {
  test('a new connection over the pending-handshake limit is closed and counted; done handshakes free a slot', async () => {
    const s = await fx.start({ maxPendingHandshakes: 2, handshakeTimeout: 0 }, echo);
    const p1 = await connectRaw(s.port);
    const p2 = await connectRaw(s.port);
    sockets.push(p1, p2);
    p2.write(fx.hello.subarray(0, 20)); // half a ClientHello: still pending
    await until(() => s.server.stats().pendingHandshakes === 2, 5000, 'two pending handshakes');

    const raw = await connectRaw(s.port);
    sockets.push(raw);
    await closedBy(raw, 10000);
    expect(s.server.stats().rejectedMaxPendingHandshakes).toBe(1);
    expect(await tryTls(s.port)).not.toBe('secure');
    expect(s.server.stats().rejectedMaxPendingHandshakes).toBe(2);
    expect(s.server.stats().rejectedMaxConnections).toBe(0);

    // The stalled clients give up: their slots free, and a real client is served.
    p1.destroy();
    p2.destroy();
    await until(() => s.server.stats().pendingHandshakes === 0, 5000, 'no pending handshakes');
    expect(await tryTls(s.port)).toBe('secure');
    // Completed handshakes do not count against the limit.
    expect(await tryTls(s.port)).toBe('secure');
    expect(await tryTls(s.port)).toBe('secure');
    await until(() => s.server.stats().handshakes === 3, 5000, 'three handshakes at the server');
    const st = s.server.stats();
    expect(st.connections).toBe(3);
    expect(st.pendingHandshakes).toBe(0);
    expect(st.rejectedMaxPendingHandshakes).toBe(2);
    // The two that hung up mid-handshake count as failures.
    expect(st.handshakeFailures).toBe(2);
  });
});
