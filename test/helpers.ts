// Shared test helpers. Used by every test file, directly or through server-helpers.ts (the native
// server's tests): bounded waits, the command runner, a captured ClientHello; and for the wrap() tests
// a loopback server that wraps every accepted socket, a Node TLS client with session capture and the
// three ways of ending a connection, and an `openssl s_client` runner.
import { spawn } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';

import {
  CacheStats,
  CloseInfo,
  SecureContext,
  SessionDetails,
  TLSConnection,
  TLSError,
  UncleanClosePolicy,
  generateCertificate,
  wrap,
} from '../lib';

/** One self-signed EC certificate per test file (CN=localhost, SAN localhost/127.0.0.1/::1). */
export const CERT = generateCertificate();

/** Rejects after `ms` with `what` in the message; keeps every wait in a test bounded. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` every 10 ms until it holds, at most `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(10);
  }
}

/** Every server and client in the tests is on loopback. */
export const HOST = '127.0.0.1';

/**
 * A test or describe that runs only where `supported` holds; elsewhere it is skipped, and its name says
 * on which platform and why (the release workflow runs the suite on Linux, macOS and Windows).
 */
export function onlyWhere<F extends typeof test | typeof describe>(fn: F, supported: boolean, why: string): F {
  if (supported) return fn;
  type Named = (name: string, ...rest: unknown[]) => void;
  const tag = (name: string) => `${name} [skipped on ${process.platform}: ${why}]`;
  const skip = fn.skip as unknown as Named;
  const each = fn.skip.each as unknown as (...table: unknown[]) => Named;
  const skipped: Named = (name, ...rest) => skip(tag(name), ...rest);
  return Object.assign(skipped, {
    each:
      (...table: unknown[]): Named =>
      (name, ...rest) =>
        each(...table)(tag(name), ...rest),
  }) as unknown as F;
}

/** Platform facts the tests depend on. */
export const PLATFORM = {
  /** SO_REUSEPORT (several listeners on one port): Linux, macOS; not Windows. */
  reusePort: process.platform !== 'win32',
  /** The kernel spreads connections over SO_REUSEPORT listeners: Linux; macOS gives them all to one. */
  reusePortBalances: process.platform === 'linux',
  /** Handing an accepted socket to Server.adopt() (cluster): not on Windows (uv_tcp_open of a duplicate). */
  adopt: process.platform !== 'win32',
  /** POSIX signals: on Windows child.kill() ends the process without running its handlers. */
  signals: process.platform !== 'win32',
  /** The Python 3 launcher's name. */
  python: process.platform === 'win32' ? 'python' : 'python3',
} as const;

/** Everything the server saw of one connection. */
export interface ServerConn {
  conn: TLSConnection;
  /** Resolves with the session at 'secure', rejects if the connection closes first. */
  secure: Promise<SessionDetails>;
  /** Resolves with the CloseInfo of 'close' (always settles). */
  closed: Promise<CloseInfo>;
  /** 'error' events, in order. */
  errors: Error[];
}

export interface ServerOptions {
  uncleanClose?: UncleanClosePolicy;
  /** What to do with each connection; default: echo (pipe it to itself). */
  handler?: (conn: TLSConnection) => void;
}

/** A net.Server on 127.0.0.1:0 wrapping every socket with `wrap(socket, { context })`. */
export class TestServer {
  readonly conns: ServerConn[] = [];
  private waiters: Array<() => void> = [];

  private constructor(
    readonly server: net.Server,
    readonly context: SecureContext,
  ) {}

  static async start(context: SecureContext, options: ServerOptions = {}): Promise<TestServer> {
    let self: TestServer | null = null;
    const server = net.createServer((socket) => {
      const conn = wrap(socket, { context, uncleanClose: options.uncleanClose });
      const errors: Error[] = [];
      conn.on('error', (err) => errors.push(err));
      const closed = new Promise<CloseInfo>((resolve) => conn.once('close', (info: CloseInfo) => resolve(info)));
      const secure = new Promise<SessionDetails>((resolve, reject) => {
        conn.once('secure', resolve);
        conn.once('close', () => reject(new Error(`closed before secure: ${errors[0]?.message ?? 'no error'}`)));
      });
      secure.catch(() => undefined); // observed by tests that expect it
      (options.handler ?? ((c) => c.pipe(c)))(conn);
      self!.conns.push({ conn, secure, closed, errors });
      const waiters = self!.waiters;
      self!.waiters = [];
      for (const w of waiters) w();
    });
    self = new TestServer(server, context);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, HOST, () => resolve());
    });
    return self;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The n-th accepted connection (0-based), waiting for it if needed. */
  async connection(n: number, ms = 10000): Promise<ServerConn> {
    const deadline = Date.now() + ms;
    while (this.conns.length <= n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`connection #${n} never arrived (${this.conns.length} so far)`);
      await within(new Promise<void>((r) => this.waiters.push(r)), left, `connection #${n}`).catch(() => undefined);
    }
    return this.conns[n];
  }

  /** The last accepted connection. */
  last(): ServerConn {
    if (this.conns.length === 0) throw new Error('no connection yet');
    return this.conns[this.conns.length - 1];
  }

  /** Stops listening, destroys what is still open and awaits every close event. */
  async close(): Promise<void> {
    const listening = new Promise<void>((r) => this.server.close(() => r()));
    for (const c of this.conns) if (!c.conn.destroyed) c.conn.destroy();
    await within(Promise.all(this.conns.map((c) => c.closed)), 10000, 'server connections to close');
    await within(listening, 10000, 'server to stop listening');
  }
}

/** How the client ends its connection. */
export type ClientEnding = 'close_notify' | 'fin' | 'rst';

export interface ClientOptions extends tls.ConnectionOptions {
  /** How to end after the echo round trip; default close_notify. */
  ending?: ClientEnding;
  /** Bytes to send and expect echoed; default 'ping'. Empty string: no round trip. */
  message?: string;
}

export interface ClientResult {
  reused: boolean;
  protocol: string | null;
  /** Negotiated cipher, as the client names it (OpenSSL's name). */
  cipher: string;
  alpn: string | false | null;
  /** The session to resume with: the last 'session' event (TLS 1.3 ticket) or getSession(). */
  session: Buffer | undefined;
  /** Number of 'session' events seen. */
  sessionEvents: number;
  authorized: boolean;
}

/**
 * Connects with Node's TLS client over an explicit net.Socket (so the test controls FIN and RST),
 * does one echo round trip, captures the session, ends the requested way and waits for the socket to
 * close. Rejects on TLS errors.
 */
export async function connectClient(port: number, options: ClientOptions = {}): Promise<ClientResult> {
  const { ending = 'close_notify', message = 'ping', ...tlsOptions } = options;
  const raw = net.connect({ port, host: HOST });
  raw.on('error', () => undefined); // RST on our own side surfaces here; the close still follows
  const rawClosed = new Promise<void>((r) => raw.once('close', () => r()));
  const sessions: Buffer[] = [];
  const socket = tls.connect({ socket: raw, ca: CERT.cert, servername: 'localhost', ...tlsOptions });
  socket.on('session', (s: Buffer) => sessions.push(s));
  const tlsClosed = new Promise<void>((r) => socket.once('close', () => r()));
  try {
    await within(
      new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', () => resolve());
        socket.once('error', reject);
        socket.once('close', () => reject(new Error('closed before secureConnect')));
      }),
      10000,
      'secureConnect',
    );
    if (message.length > 0) {
      let got = '';
      await within(
        new Promise<void>((resolve, reject) => {
          socket.on('data', (d: Buffer) => {
            got += d.toString();
            if (got.length >= message.length) resolve();
          });
          socket.once('error', reject);
          socket.once('end', () => reject(new Error(`ended after ${JSON.stringify(got)}`)));
          socket.write(message);
        }),
        10000,
        'echo',
      );
      if (got !== message) throw new Error(`echo mismatch: ${JSON.stringify(got)}`);
    }
    // TLS 1.3 tickets arrive right after the handshake, ahead of the echo; give stragglers a moment.
    if (socket.getProtocol() === 'TLSv1.3') {
      for (let i = 0; i < 50 && sessions.length === 0; i++) await delay(20);
    }
    const result: ClientResult = {
      reused: socket.isSessionReused(),
      protocol: socket.getProtocol(),
      cipher: socket.getCipher().name,
      alpn: socket.alpnProtocol,
      session: sessions.length > 0 ? sessions[sessions.length - 1] : socket.getSession(),
      sessionEvents: sessions.length,
      authorized: socket.authorized,
    };
    socket.on('error', () => undefined);
    if (ending === 'close_notify') socket.end();
    else if (ending === 'fin') raw.end();
    else raw.resetAndDestroy();
    await within(
      Promise.all([rawClosed, ending === 'close_notify' ? tlsClosed : Promise.resolve()]),
      10000,
      'client close',
    );
    return result;
  } catch (err) {
    socket.destroy();
    raw.destroy();
    await within(rawClosed, 10000, 'client close after failure');
    throw err;
  }
}

/** Connects and expects the handshake to fail; resolves with the client-side error (or null if it closed quietly). */
export async function connectExpectingFailure(
  port: number,
  options: tls.ConnectionOptions = {},
): Promise<Error | null> {
  const socket = tls.connect({ port, host: HOST, ca: CERT.cert, servername: 'localhost', ...options });
  let error: Error | null = null;
  socket.on('error', (e) => (error ??= e));
  // In TLS 1.3 the client finishes before the server verifies it: write, then read the alert.
  socket.on('secureConnect', () => socket.write('x'));
  socket.resume();
  await within(new Promise<void>((r) => socket.once('close', () => r())), 10000, 'failing client to close');
  return error;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  /** Written to stdin (then closed); default: stdin closed at once. */
  input?: string;
  /** Write `input` this much later (e.g. once a TLS handshake is done). */
  inputDelayMs?: number;
  /** Killed (SIGKILL) after this long; default 20000. */
  timeoutMs?: number;
  /** Reject instead of resolving with `timedOut: true`. */
  failOnTimeout?: boolean;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * The environment for a child process. Under the sanitizer build (scripts/build-asan.js) only node
 * processes get the sanitizer runtime preloaded; real clients (curl, openssl) run as they are.
 */
function childEnv(cmd: string, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (cmd === process.execPath) return env;
  const { LD_PRELOAD: _preload, ASAN_OPTIONS: _asan, UBSAN_OPTIONS: _ubsan, ...rest } = env;
  return rest;
}

/** Runs a command, optionally writing `input` to its stdin after `inputDelayMs`, killed after `timeoutMs`. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? 20000;
  return new Promise((resolve, reject) => {
    const env = childEnv(cmd, opts.env ?? process.env);
    const child = spawn(cmd, args, { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined);
    const killer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
      // A grandchild (under /bin/sh -c) may still hold the pipes: stop waiting for them.
      child.stdout.destroy();
      child.stderr.destroy();
    }, timeoutMs);
    let inputTimer: NodeJS.Timeout | undefined;
    const send = () => child.stdin.end(opts.input ?? '');
    if (opts.inputDelayMs) inputTimer = setTimeout(send, opts.inputDelayMs);
    else send();
    child.on('error', (err) => {
      clearTimeout(killer);
      clearTimeout(inputTimer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      clearTimeout(inputTimer);
      if (timedOut && opts.failOnTimeout) {
        reject(new Error(`timed out after ${timeoutMs} ms: ${cmd} ${args.join(' ')}\n${stdout}\n${stderr}`));
      } else resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** Runs a shell command line (pipes, subshells), with `input` on stdin; rejects if not done in `ms`. */
export function sh(command: string, ms = 20000, input?: string): Promise<RunResult> {
  // On Windows: the sh of Git for Windows, on PATH in the release workflow.
  return run(process.platform === 'win32' ? 'sh' : '/bin/sh', ['-c', command], {
    input,
    timeoutMs: ms,
    failOnTimeout: true,
  });
}

/** `openssl s_client -connect 127.0.0.1:port ...args`. */
export function sClient(
  port: number,
  args: string[],
  opts: Pick<RunOptions, 'input' | 'inputDelayMs' | 'timeoutMs'> = {},
): Promise<RunResult> {
  return run('openssl', ['s_client', '-connect', `${HOST}:${port}`, '-servername', 'localhost', ...args], opts);
}

/** Runs `fn`, expects it to throw a TLSError and returns it. */
export function thrown(fn: () => unknown): TLSError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TLSError);
    return err as TLSError;
  }
  throw new Error('did not throw');
}

/** A context from the shared certificate plus `options`. */
export function makeContext(options: ConstructorParameters<typeof SecureContext>[0] = {}): SecureContext {
  return new SecureContext({ cert: CERT.cert, key: CERT.key, ...options });
}

/** Expects exactly the values given in `expected` for those counters of the cache (the rest unchecked). */
export function expectStats(ctx: SecureContext, expected: Partial<CacheStats>): void {
  const st = ctx.stats();
  const picked = Object.fromEntries(Object.keys(expected).map((k) => [k, st[k as keyof CacheStats]]));
  expect(picked).toEqual(expected);
}

/** Resolves with the ids of the next `n` events of `name`. */
export function collectEvents(
  ctx: SecureContext,
  name: 'sessionAdded' | 'sessionRemoved',
  n: number,
  ms = 5000,
): Promise<string[]> {
  const ids: string[] = [];
  let listener: (id: string) => void;
  const p = new Promise<string[]>((resolve) => {
    listener = (id: string) => {
      ids.push(id);
      if (ids.length >= n) resolve(ids);
    };
    ctx.on(name, listener);
  });
  return within(p, ms, `${n} ${name} event(s)`).finally(() => ctx.off(name, listener));
}

/** A real ClientHello, as node's TLS client sends it (one whole record, captured by a throwaway TCP server). */
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
  const client = tls.connect({ host: HOST, port, servername: 'localhost', rejectUnauthorized: false });
  client.on('error', () => undefined);
  try {
    return await within(got, 5000, 'a ClientHello');
  } finally {
    client.destroy();
    await new Promise<void>((resolve) => grab.close(() => resolve()));
  }
}
