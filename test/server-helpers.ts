// Helpers of the native-transport tests (test/server-*.test.ts). What they share with the wrap() tests
// (bounded waits, the command runner, the certificate, a captured ClientHello) lives in helpers.ts and
// is re-exported from here.
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';

import { ClientInfo, ListenOptions, Server, ServerOptions, TLSConnection, TLSError, createServer } from '../lib';
import { CERT, HOST, captureClientHello, until, within } from './helpers';

export { CERT, HOST, PLATFORM, captureClientHello, delay, onlyWhere, run, sClient, sh, until, within } from './helpers';
export type { RunResult } from './helpers';

export interface Started {
  server: Server;
  port: number;
  /** Every connection the server handed out, in order. */
  connections: TLSConnection[];
}

/** createServer with the test certificate, listening on 127.0.0.1 with a free port (unless `listen` says otherwise). */
export async function startServer(
  options: ServerOptions = {},
  listener?: (conn: TLSConnection) => void,
  listen: ListenOptions = {},
): Promise<Started> {
  const { cert, key } = CERT;
  const connections: TLSConnection[] = [];
  const server = createServer(options.context ? options : { cert, key, ...options }, (conn) => {
    connections.push(conn);
    // Tests that care listen themselves; never let an error event crash the run.
    conn.on('error', () => undefined);
    listener?.(conn);
  });
  await within(
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: 0, host: HOST, ...listen }, () => {
        server.off('error', reject);
        resolve();
      });
    }),
    5000,
    'listening',
  );
  return { server, port: server.address()!.port, connections };
}

/** Destroys what is open and waits for the server's 'close'. */
export async function stopServer(server: Server | undefined): Promise<void> {
  if (!server) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await within(closed, 10000, 'server close');
}

/**
 * Per-file fixture: servers started through `start()` and client sockets pushed on `sockets` are closed
 * after each test; with `clientHello`, `hello` holds a real ClientHello (captured once, in beforeAll).
 */
export class ServerFixture {
  readonly sockets: net.Socket[] = [];
  hello: Buffer = Buffer.alloc(0);
  private readonly servers: Server[] = [];

  /** startServer(), closed after the test (if the test has not closed it itself). */
  async start(
    options: ServerOptions = {},
    listener?: (conn: TLSConnection) => void,
    listen?: ListenOptions,
  ): Promise<Started> {
    const started = await startServer(options, listener, listen);
    this.servers.push(started.server);
    return started;
  }

  async cleanUp(): Promise<void> {
    for (const x of this.sockets.splice(0)) x.destroy();
    for (const server of this.servers.splice(0)) {
      if (server.listening) await stopServer(server);
      else if (server.stats().connections > 0) {
        // close() was called, connections still open: close them and let the server finish.
        server.closeAllConnections();
        await until(() => server.stats().connections === 0, 10000, 'the connections of a closed server to go');
      }
    }
  }
}

/** A {@link ServerFixture} with its beforeAll/afterEach hooks registered. */
export function useServerFixture(opts: { clientHello?: boolean } = {}): ServerFixture {
  const fx = new ServerFixture();
  if (opts.clientHello) {
    beforeAll(async () => {
      fx.hello = await captureClientHello();
    });
  }
  afterEach(() => fx.cleanUp());
  return fx;
}

/** Records the server's tlsClientError events, in order. */
export function collectTlsClientErrors(server: Server): Array<{ err: TLSError; client: ClientInfo }> {
  const errors: Array<{ err: TLSError; client: ClientInfo }> = [];
  server.on('tlsClientError', (err, client) => errors.push({ err, client }));
  return errors;
}

/** Writes `text` and expects it back (from an echoing server connection). */
export async function echoes(c: tls.TLSSocket, text: string): Promise<void> {
  const got = within(once(c, 'data'), 10000, `echo of ${text}`);
  c.write(text);
  expect((await got)[0].toString()).toBe(text);
}

/** Echo: every connection writes back what it reads, honouring backpressure (pipe). */
export function echo(conn: TLSConnection): void {
  conn.pipe(conn);
}

export interface ClientOptions extends tls.ConnectionOptions {
  port: number;
}

/** tls.connect to 127.0.0.1 (certificate not verified), resolved on secureConnect. */
export async function connectTls(opts: ClientOptions, ms = 10000): Promise<tls.TLSSocket> {
  const socket = tls.connect({ host: HOST, rejectUnauthorized: false, ...opts });
  try {
    await within(once(socket, 'secureConnect'), ms, 'secureConnect');
  } catch (err) {
    socket.destroy();
    throw err;
  }
  return socket;
}

export interface OpenSession {
  socket: tls.TLSSocket;
  session: Buffer;
  reused: boolean;
  protocol: string | null;
}

/**
 * Connects to an echoing server and waits until the client holds a resumable session (TLS 1.3
 * tickets arrive after the handshake); the connection stays open. Destroys the socket on failure.
 */
export async function connectWithSession(opts: ClientOptions): Promise<OpenSession> {
  const socket = tls.connect({ host: HOST, rejectUnauthorized: false, ...opts });
  const sessions: Buffer[] = [];
  socket.on('session', (s: Buffer) => sessions.push(s));
  try {
    await within(once(socket, 'secureConnect'), 10000, 'secureConnect');
    const reused = socket.isSessionReused();
    const protocol = socket.getProtocol();
    // Tickets come with the first read in TLS 1.3: round-trip one byte through the echo.
    socket.write('x');
    await within(once(socket, 'data'), 10000, 'echo');
    await until(() => sessions.length > 0 || socket.getSession() !== undefined, 5000, 'a session');
    const session = sessions[sessions.length - 1] ?? socket.getSession()!;
    return { socket, session, reused, protocol };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

/**
 * Connects, waits until the client holds a resumable session, then ends with close_notify. Returns
 * the session and whether this one was resumed.
 */
export async function sessionOf(
  opts: ClientOptions,
): Promise<{ session: Buffer; reused: boolean; protocol: string | null }> {
  const { socket, session, reused, protocol } = await connectWithSession(opts);
  try {
    socket.end();
    await within(once(socket, 'close'), 10000, 'client close');
    return { session, reused, protocol };
  } finally {
    socket.destroy();
  }
}

export function sha256(...parts: Buffer[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** Deterministic pseudo-random bytes (xorshift), cheap enough for many MiB. */
export function pseudoRandom(len: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(len);
  let x = seed >>> 0 || 0x9e3779b9;
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  for (; i < len; i++) out[i] = (x >>> (8 * (i & 3))) & 0xff;
  return out;
}

/** Opens a raw TCP socket to the server. */
export async function connectRaw(port: number): Promise<net.Socket> {
  const socket = net.connect({ host: HOST, port });
  await within(once(socket, 'connect'), 5000, 'tcp connect');
  return socket;
}

/** Resolves when the socket has closed (the server closed it, by FIN or RST). */
export function closedBy(socket: net.Socket, ms: number): Promise<void> {
  socket.on('error', () => undefined);
  socket.resume();
  if (socket.destroyed) return Promise.resolve();
  // Not events.once: it rejects on 'error', and a reset is a fine way to be closed here.
  return within(
    new Promise<void>((resolve) => socket.once('close', () => resolve())),
    ms,
    'the server to close the socket',
  );
}

/** What a client saw of one {@link visit}. */
export interface Visit {
  reused: boolean;
  /** The newest session the server gave (for the next visit). */
  session: Buffer;
  /** Milliseconds from connect to secureConnect. */
  ms: number;
}

/**
 * Connects with tls.connect (version pinned, optionally offering `session`), echoes one message so that
 * TLS 1.3 tickets arrive, closes with close_notify.
 */
export async function visit(port: number, version: tls.SecureVersion, session?: Buffer): Promise<Visit> {
  const t0 = Date.now();
  const c = tls.connect({
    host: HOST,
    port,
    rejectUnauthorized: false,
    minVersion: version,
    maxVersion: version,
    session,
  });
  let latest: Buffer | undefined;
  c.on('session', (s: Buffer) => (latest = s));
  await within(once(c, 'secureConnect'), 10000, 'secureConnect');
  const ms = Date.now() - t0;
  await echoes(c, 'ping');
  const reused = c.isSessionReused();
  // A resumed TLS 1.2 connection emits no 'session': its session is the one it resumed.
  latest ??= c.getSession();
  c.end();
  await within(once(c, 'close'), 10000, 'client close');
  if (!latest) throw new Error('no session from the server');
  return { reused, session: latest, ms };
}
