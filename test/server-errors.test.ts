// Error paths of the native server: garbage, resets mid-handshake, EADDRINUSE, close with open connections.
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';

import { Server, SystemError, TLSError, createServer } from '../lib';
import {
  CERT,
  HOST,
  closedBy,
  collectTlsClientErrors,
  connectRaw,
  connectTls,
  delay,
  echo,
  echoes,
  startServer,
  stopServer,
  until,
  useServerFixture,
  within,
} from './server-helpers';

jest.setTimeout(60000);

const fx = useServerFixture({ clientHello: true });
const { sockets } = fx;

describe('bad clients', () => {
  test.each([
    ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ['random bytes', Buffer.from('8f3a0c9d2b7e11f0a4c6d8e0f2a4b6c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8a0', 'hex')],
    [
      'a handshake record of the wrong type',
      Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x04]), Buffer.from([0x63, 0, 0, 0])]),
    ],
  ])('%s: tlsClientError ERR_OSC_HANDSHAKE with an OpenSSL reason; the server goes on', async (_n, garbage) => {
    const s = await fx.start({}, echo);
    const errors = collectTlsClientErrors(s.server);
    // A good client is connected throughout.
    const good = await connectTls({ port: s.port });
    sockets.push(good);

    const raw = await connectRaw(s.port);
    sockets.push(raw);
    const localPort = raw.localPort;
    const alert: Buffer[] = [];
    raw.on('data', (d: Buffer) => alert.push(d));
    raw.write(garbage);
    await closedBy(raw, 10000); // the server hung up
    await until(() => errors.length === 1, 5000, 'tlsClientError');
    const { err, client } = errors[0];
    expect(err).toBeInstanceOf(TLSError);
    expect(err.code).toBe('ERR_OSC_HANDSHAKE');
    expect(typeof err.reason).toBe('string');
    expect(err.reason.length).toBeGreaterThan(0);
    expect(err.message).toContain(err.reason);
    expect(client).toEqual({ remoteAddress: '127.0.0.1', remotePort: localPort });
    // What went back, if anything, is a TLS alert record (never plaintext).
    const back = Buffer.concat(alert);
    if (back.length > 0) expect(back[0]).toBe(0x15);

    const st = s.server.stats();
    expect(st.handshakeFailures).toBe(1);
    expect(st.handshakeTimeouts).toBe(0);
    expect(st.pendingHandshakes).toBe(0);
    expect(st.connections).toBe(1);

    // The good client still works, and new ones are served, also while garbage keeps coming.
    await echoes(good, 'still fine');
    const more = await Promise.all([
      connectTls({ port: s.port }),
      connectRaw(s.port).then((r) => {
        r.write(garbage);
        return r;
      }),
      connectTls({ port: s.port }),
    ]);
    sockets.push(...more);
    await echoes(more[0] as tls.TLSSocket, 'new one');
    await echoes(more[2] as tls.TLSSocket, 'another');
    await until(() => errors.length === 2, 5000, 'second tlsClientError');
    expect(s.server.stats().handshakeFailures).toBe(2);
  });

  test('OpenSSL reasons are specific (HTTP on the TLS port)', async () => {
    const s = await fx.start({});
    const errors = collectTlsClientErrors(s.server);
    const raw = await connectRaw(s.port);
    sockets.push(raw);
    raw.write('GET / HTTP/1.1\r\n\r\n');
    await closedBy(raw, 10000);
    await until(() => errors.length === 1, 5000, 'tlsClientError');
    expect(errors[0].err.reason).toMatch(/http request|wrong version number/);
  });

  test.each([
    ['a record header', () => fx.hello.subarray(0, 5)],
    ['half a ClientHello', () => fx.hello.subarray(0, fx.hello.length >> 1)],
    ['a whole ClientHello', () => fx.hello],
  ])('a client that sends %s and resets: counted as a failure, no crash, next served', async (_n, part) => {
    const s = await fx.start({}, echo);
    const errors = collectTlsClientErrors(s.server);
    const raw = await connectRaw(s.port);
    raw.on('error', () => undefined);
    raw.write(part());
    await until(() => s.server.stats().pendingHandshakes === 1, 5000, 'a pending handshake');
    await delay(20);
    raw.resetAndDestroy();
    await until(() => errors.length === 1, 5000, 'tlsClientError');
    expect(errors[0].err.code).toBe('ERR_OSC_HANDSHAKE');
    expect(errors[0].err.reason.length).toBeGreaterThan(0);
    await until(() => s.server.stats().connections === 0, 5000, 'the connection to go');
    const st = s.server.stats();
    expect(st.handshakeFailures).toBe(1);
    expect(st.pendingHandshakes).toBe(0);
    expect(st.handshakes).toBe(0);

    const c = await connectTls({ port: s.port });
    sockets.push(c);
    await echoes(c, 'after reset');
  });

  test('a client that closes (FIN) mid-handshake is a failure with a reason', async () => {
    const s = await fx.start({});
    const errors = collectTlsClientErrors(s.server);
    const raw = await connectRaw(s.port);
    sockets.push(raw);
    raw.end(fx.hello.subarray(0, 30));
    await until(() => errors.length === 1, 5000, 'tlsClientError');
    expect(errors[0].err.code).toBe('ERR_OSC_HANDSHAKE');
    expect(errors[0].err.reason).toMatch(/closed/);
    await until(() => s.server.stats().connections === 0, 5000, 'the connection to go');
  });
});

describe('listen errors', () => {
  test('EADDRINUSE: a second server on the same port emits error with the code', async () => {
    const s = await fx.start({}, echo);
    const { cert, key } = CERT;
    const second: Server = createServer({ cert, key });
    const listening = jest.fn();
    second.on('listening', listening);
    second.listen(s.port, HOST);
    const [err] = (await within(once(second, 'error'), 5000, 'error event')) as [SystemError];
    expect(err).toBeInstanceOf(SystemError);
    expect(err.code).toBe('EADDRINUSE');
    expect(err.syscall).toMatch(/bind|listen/);
    expect(typeof err.errno).toBe('number');
    expect(err.message).toContain(String(s.port));
    expect(listening).not.toHaveBeenCalled();
    expect(second.address()).toBeNull();
    expect(second.listening).toBe(false);

    // The first server is unaffected.
    const c = await connectTls({ port: s.port });
    sockets.push(c);
    await echoes(c, 'first still serves');
    expect(second.stats().accepted).toBe(0);

    // Closing the server whose listen failed calls back (as node:net: ERR_SERVER_NOT_RUNNING).
    const closeErr = await within(
      new Promise<Error | undefined>((resolve) => second.close(resolve)),
      5000,
      'close of a server whose listen failed',
    );
    expect((closeErr as NodeJS.ErrnoException | undefined)?.code).toBe('ERR_SERVER_NOT_RUNNING');
  });

  test('close() of a server that never listened, or twice, calls back and emits close', async () => {
    const { cert, key } = CERT;
    const never = createServer({ cert, key });
    const onClose = jest.fn();
    never.on('close', onClose);
    const e1 = await within(new Promise<Error | undefined>((r) => never.close(r)), 5000, 'close (never listened)');
    expect((e1 as NodeJS.ErrnoException).code).toBe('ERR_SERVER_NOT_RUNNING');
    expect(onClose).toHaveBeenCalledTimes(1);

    const started = await startServer({});
    const e2 = await within(new Promise<Error | undefined>((r) => started.server.close(r)), 5000, 'first close');
    expect(e2).toBeUndefined();
    const e3 = await within(new Promise<Error | undefined>((r) => started.server.close(r)), 5000, 'second close');
    expect((e3 as NodeJS.ErrnoException).code).toBe('ERR_SERVER_NOT_RUNNING');
  });

  test('a port number out of range throws', () => {
    const { cert, key } = CERT;
    const x = createServer({ cert, key });
    expect(() => x.listen(70000, HOST)).toThrow(RangeError);
  });
});

describe('close with open connections', () => {
  test('close(): no new connections, existing ones go on, close fires after the last one ends', async () => {
    const s = await fx.start({}, echo);
    const a = await connectTls({ port: s.port });
    sockets.push(a);
    await until(() => s.server.stats().connections === 1, 5000, 'a connection');

    let closed = false;
    const closeEvent = new Promise<void>((resolve) => s.server.close(() => resolve()));
    void closeEvent.then(() => (closed = true));

    // New connections are refused: the listener is gone.
    const refused = net.connect({ host: HOST, port: s.port });
    const [err] = (await within(once(refused, 'error'), 5000, 'connect error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');

    // The existing connection still echoes, and the server is not closed yet.
    await echoes(a, 'after close()');
    await echoes(a, 'and again');
    await delay(50);
    expect(closed).toBe(false);
    expect(s.server.stats().connections).toBe(1);

    // The client ends: then 'close'.
    a.end();
    await within(closeEvent, 10000, 'server close');
    expect(closed).toBe(true);
    expect(s.server.stats().connections).toBe(0);
    expect(s.connections[0].closeInfo).toEqual({ clean: true, ending: 'close_notify' });
  });

  test('closeAllConnections(): every open connection (handshaking too) is closed, then close fires', async () => {
    const s = await fx.start({ handshakeTimeout: 0 }, echo);
    const clients = await Promise.all([connectTls({ port: s.port }), connectTls({ port: s.port })]);
    const pending = await connectRaw(s.port);
    sockets.push(...clients, pending);
    await until(() => s.server.stats().connections === 3, 5000, 'three connections');
    expect(s.server.stats().pendingHandshakes).toBe(1);

    const closeEvent = new Promise<void>((resolve) => s.server.close(() => resolve()));
    const clientCloses = [...clients, pending].map((c) => closedBy(c, 10000));
    s.server.closeAllConnections();
    await within(Promise.all(clientCloses), 10000, 'every client to be closed');
    await within(closeEvent, 10000, 'server close');
    expect(s.server.stats().connections).toBe(0);
    expect(s.server.stats().pendingHandshakes).toBe(0);
    await until(() => s.connections.every((c) => c.closeInfo !== null), 5000, 'server-side close events');
    expect(s.connections.map((c) => c.closeInfo!.ending)).toEqual(['local', 'local']);
  });

  test('close() with no connections fires close; a server can be closed and its port reused', async () => {
    const s = await fx.start({});
    const port = s.port;
    await within(new Promise<void>((resolve) => s.server.close(() => resolve())), 5000, 'close');
    expect(s.server.address()).toBeNull();
    const s2 = await fx.start({}, echo);
    // A fresh server on the same port works (bind right after close).
    const { cert, key } = CERT;
    const again = createServer({ cert, key }, echo);
    await stopServer(s2.server);
    await within(
      new Promise<void>((resolve, reject) => {
        again.once('error', reject);
        again.listen(port, HOST, resolve);
      }),
      5000,
      'listen on the old port',
    );
    const c = await connectTls({ port });
    sockets.push(c);
    await echoes(c, 'same port');
    c.destroy();
    await stopServer(again);
  });
});
