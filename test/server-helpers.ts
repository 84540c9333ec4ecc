// Shared helpers of the native-transport tests (test/server-*.test.ts).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';

import { GeneratedCertificate, Server, ServerOptions, TLSConnection, createServer, generateCertificate } from '../lib';

let cached: GeneratedCertificate | null = null;

/** One EC certificate per test file (CN=localhost, SAN 127.0.0.1). */
export function testCert(): GeneratedCertificate {
  cached ??= generateCertificate();
  return cached;
}

export const HOST = '127.0.0.1';

/** Resolves with the value, or rejects after `ms` with a message naming what was awaited. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `cond` every 10 ms until it holds, at most `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(10);
  }
}

export interface Started {
  server: Server;
  port: number;
  /** Every connection the server handed out, in order. */
  connections: TLSConnection[];
}

/** createServer with the test certificate, listening on 127.0.0.1 with a free port. */
export async function startServer(
  options: ServerOptions = {},
  listener?: (conn: TLSConnection) => void,
): Promise<Started> {
  const { cert, key } = testCert();
  const connections: TLSConnection[] = [];
  const server = createServer({ cert, key, ...options }, (conn) => {
    connections.push(conn);
    // Tests that care listen themselves; never let an error event crash the run.
    conn.on('error', () => undefined);
    listener?.(conn);
  });
  await within(
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: 0, host: HOST }, () => {
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

/**
 * Connects, waits until the client holds a resumable session (TLS 1.3 tickets arrive after the
 * handshake), then ends with close_notify. Returns the session and whether this one was resumed.
 */
export async function sessionOf(
  opts: ClientOptions,
): Promise<{ session: Buffer; reused: boolean; protocol: string | null }> {
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

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a command (shell), with stdin text, bounded by `ms` (killed after). */
export function run(command: string, ms = 20000, input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`command timed out after ${ms} ms: ${command}\n${stdout}\n${stderr}`));
    }, ms);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
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
  return within(new Promise<void>((resolve) => socket.once('close', () => resolve())), ms, 'the server to close the socket');
}

/** A real ClientHello, as node's TLS client sends it (captured through a throwaway TCP server). */
export async function captureClientHello(): Promise<Buffer> {
  const grab = net.createServer();
  await new Promise<void>((resolve) => grab.listen(0, HOST, resolve));
  const port = (grab.address() as net.AddressInfo).port;
  const got = new Promise<Buffer>((resolve) => {
    grab.once('connection', (s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
          resolve(buf.subarray(0, 5 + buf.readUInt16BE(3)));
          s.destroy();
        }
      });
      s.on('error', () => undefined);
    });
  });
  const client = tls.connect({ host: HOST, port, rejectUnauthorized: false });
  client.on('error', () => undefined);
  try {
    return await within(got, 5000, 'a ClientHello');
  } finally {
    client.destroy();
    await new Promise<void>((resolve) => grab.close(() => resolve()));
  }
}
