// What a client sent before the server got round to accepting it. The native server reads a new
// connection at once (as a C server calling SSL_accept right after accept() does), so whatever arrived
// with the accept — a ClientHello, garbage, a FIN, a reset — is handled in the accept itself. Each test
// blocks the event loop while a Python client does its part, so the accept finds all of it there.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { TLSError } from '../lib';
import {
  PLATFORM,
  collectTlsClientErrors,
  connectTls,
  echo,
  echoes,
  until,
  useServerFixture,
  within,
} from './server-helpers';

jest.setTimeout(60000);

const fx = useServerFixture({ clientHello: true });
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'osc-first-read-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// argv: port, what ("tls", or bytes then "fin"/"rst"), hex bytes, marker file.
const CLIENT = String.raw`
import socket, ssl, struct, sys
port, what, data, marker = int(sys.argv[1]), sys.argv[2], bytes.fromhex(sys.argv[3]), sys.argv[4]
s = socket.create_connection(('127.0.0.1', port))
if what == 'tls':
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s.setblocking(False)
    t = ctx.wrap_socket(s, do_handshake_on_connect=False)
    try:
        t.do_handshake()
    except ssl.SSLWantReadError:
        pass
    open(marker, 'w').close()  # the ClientHello is on its way
    t.settimeout(10)
    t.do_handshake()
    t.sendall(b'first-read')
    print(t.recv(100).decode(), t.version(), flush=True)
    t.unwrap()
else:
    if data:
        s.sendall(data)
    if what == 'rst':
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
    s.close()
`;

/** Runs the client to its end while this thread (and so the server's event loop) waits. */
function beforeTheAccept(port: number, what: 'fin' | 'rst', bytes: Buffer): void {
  execFileSync(PLATFORM.python, ['-c', CLIENT, String(port), what, bytes.toString('hex'), '-'], { timeout: 10000 });
}

/** Blocks this thread until `file` exists: the server cannot accept meanwhile. */
function blockUntil(file: string, ms: number): void {
  const wait = new Int32Array(new SharedArrayBuffer(4));
  const end = Date.now() + ms;
  while (!existsSync(file)) {
    if (Date.now() > end) throw new Error(`no ${path.basename(file)} within ${ms} ms`);
    Atomics.wait(wait, 0, 0, 5);
  }
}

describe('bytes that arrived before the accept', () => {
  test('a ClientHello: the handshake completes and the connection works', async () => {
    const s = await fx.start({}, echo);
    const marker = path.join(dir, 'hello-sent');
    const client = spawn(PLATFORM.python, ['-c', CLIENT, String(s.port), 'tls', '', marker]);
    let out = '';
    client.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => client.on('exit', resolve));
    blockUntil(marker, 10000);
    expect(s.server.stats().connections).toBe(0); // not accepted yet: everything waits in the kernel
    expect(await within(exited, 15000, 'the Python client')).toBe(0);
    expect(out).toMatch(/^first-read TLSv1\.3/);
    await until(() => s.server.stats().connections === 0, 5000, 'the connection to go');
    const st = s.server.stats();
    expect(st.handshakes).toBe(1);
    expect(st.handshakeFailures).toBe(0);
    expect(st.pendingHandshakes).toBe(0);
  });

  const CLOSED = /client closed the connection during the handshake/;
  const RESET = /client network error during the handshake: ECONNRESET/;
  test.each([
    ['a whole ClientHello, then FIN', () => fx.hello, 'fin' as const, CLOSED],
    ['half a ClientHello, then FIN', () => fx.hello.subarray(0, fx.hello.length >> 1), 'fin' as const, CLOSED],
    [
      'an HTTP request, then FIN',
      () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      'fin' as const,
      /http request/,
    ],
    ['a whole ClientHello, then a reset', () => fx.hello, 'rst' as const, RESET],
    // The reset itself is read, not only the bytes before it (libuv, seeing the hang-up after a short
    // read, would report it as a FIN).
    ['half a ClientHello, then a reset', () => fx.hello.subarray(0, fx.hello.length >> 1), 'rst' as const, RESET],
    ['nothing, then FIN', () => Buffer.alloc(0), 'fin' as const, CLOSED],
    ['nothing, then a reset', () => Buffer.alloc(0), 'rst' as const, RESET],
  ])('%s: one failure with the reason, counters back to 0, the server goes on', async (_n, bytes, how, reason) => {
    const s = await fx.start({}, echo);
    const errors = collectTlsClientErrors(s.server);
    const good = await connectTls({ port: s.port });
    fx.sockets.push(good);

    beforeTheAccept(s.port, how, bytes());
    await until(() => errors.length === 1, 5000, 'tlsClientError');
    const { err } = errors[0];
    expect(err).toBeInstanceOf(TLSError);
    expect(err.code).toBe('ERR_OSC_HANDSHAKE');
    expect(err.reason).toMatch(reason);
    await until(() => s.server.stats().connections === 1, 5000, 'only the good client left');
    const st = s.server.stats();
    expect(st.handshakeFailures).toBe(1);
    expect(st.pendingHandshakes).toBe(0);
    expect(st.handshakes).toBe(1);

    await echoes(good, 'still fine');
    const next = await connectTls({ port: s.port });
    fx.sockets.push(next);
    await echoes(next, 'next one');
  });
});
