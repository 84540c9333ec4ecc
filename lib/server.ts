// createServer: the native TCP transport under a node:net / node:tls style Server.
import { lookup } from 'node:dns';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';

import binding, { NativeSessionInfo } from './binding';
import { CloseEnding, TLSConnection, Transport, UncleanClosePolicy } from './connection';
import { SecureContext, SecureContextOptions } from './context';
import { SystemError, TLSError, TLSErrorCode } from './errors';
import { policyCode } from './wrap';

/** Options of {@link createServer}: the SecureContext options (or a shared `context`) plus limits. */
export interface ServerOptions extends SecureContextOptions {
  /** Share a context (and so one session cache) between servers; built from the other options when absent. */
  context?: SecureContext;
  /** Session of a peer that disconnects without close_notify: `'keep'` it cached (default) or `'drop'` it. */
  uncleanClose?: UncleanClosePolicy;
  /** Milliseconds a client has to complete its handshake; 0 disables. Default 10000. */
  handshakeTimeout?: number;
  /** Open connections (handshaking or not) beyond which new ones are closed at once; 0 = no limit. Default 0. */
  maxConnections?: number;
  /** Concurrent unfinished handshakes beyond which new connections are closed at once; 0 = no limit. Default 0. */
  maxPendingHandshakes?: number;
  /** Bytes of ciphertext queued on a socket before `write()` returns false. Default 65536. */
  highWaterMark?: number;
}

/** Where to listen. */
export interface ListenOptions {
  /** Port; 0 (default) picks a free one. */
  port?: number;
  /** Address or host name. Default `'::'` (all addresses, IPv4 too), falling back to `'0.0.0.0'`. */
  host?: string;
  /** Listen backlog. Default 511. */
  backlog?: number;
  /** With an IPv6 host: do not accept IPv4 too. */
  ipv6Only?: boolean;
  /** SO_REUSEPORT, so several servers (e.g. worker threads) can share the port. */
  reusePort?: boolean;
}

/** Counters of one server (the cache has its own: `server.context.stats()`). */
export interface ServerStats {
  accepted: number;
  handshakes: number;
  /** Handshakes that resumed a cached session. */
  resumed: number;
  handshakeFailures: number;
  handshakeTimeouts: number;
  rejectedMaxConnections: number;
  rejectedMaxPendingHandshakes: number;
  /** Open connections now. */
  connections: number;
  /** Unfinished handshakes now. */
  pendingHandshakes: number;
}

/** Address the server listens on. */
export interface AddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

/** The peer of a failed handshake. */
export interface ClientInfo {
  remoteAddress: string;
  remotePort: number;
}

/** Events of {@link Server}. */
export interface ServerEvents {
  listening: [];
  /** A client completed its handshake. */
  secureConnection: [connection: TLSConnection];
  /** A handshake failed or timed out; the server goes on. */
  tlsClientError: [error: TLSError, client: ClientInfo];
  close: [];
  error: [error: Error];
}

interface NativeHandle {
  writev(chunks: Buffer[]): boolean;
  shutdown(): void;
  readStart(): void;
  readStop(): void;
  destroy(): void;
  setShutdown(flags: number): void;
  getShutdown(): number;
  setNoDelay(on: boolean): void;
  setKeepAlive(on: boolean, delaySeconds: number): void;
  onread?: (chunk: Buffer) => boolean;
  onend?: (ending: CloseEnding) => void;
  onerror?: (reason: string) => void;
  ondrain?: () => void;
  onclose?: (ending?: CloseEnding) => void;
  info(): NativeSessionInfo;
}

interface NativeServer {
  listen(host: string, port: number, backlog: number, ipv6Only: boolean, reusePort: boolean): void;
  address(): AddressInfo | null;
  close(): void;
  closeConnections(): void;
  stats(): ServerStats;
}

class NativeTransport implements Transport {
  private drainWaiters: Array<(err?: Error | null) => void> = [];

  constructor(
    private readonly handle: NativeHandle,
    conn: TLSConnection,
    readonly remoteAddress: string,
    readonly remotePort: number,
    readonly localAddress: string,
    readonly localPort: number,
  ) {
    handle.onread = (chunk) => conn._onData(chunk);
    handle.onend = (ending) => conn._onEnd(ending);
    handle.onerror = (reason) => conn._onClose('error', new TLSError('ERR_OSC_TLS', reason, `TLS failed: ${reason}`));
    handle.ondrain = () => this.drained();
    handle.onclose = (ending) => {
      this.drained(new TLSError('ERR_OSC_CLOSED', 'connection closed'));
      if (ending) conn._onEnd(ending);
      conn._onClose(ending ?? 'local');
    };
  }

  write(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    let ok: boolean;
    try {
      ok = this.handle.writev(chunks);
    } catch (err) {
      return cb(new TLSError('ERR_OSC_TLS', (err as Error).message));
    }
    if (ok) cb();
    else this.drainWaiters.push(cb);
  }

  end(cb: () => void): void {
    this.handle.shutdown();
    cb();
  }

  pause(): void {
    this.handle.readStop();
  }

  resume(): void {
    this.handle.readStart();
  }

  destroy(): void {
    this.handle.destroy();
  }

  setShutdown(flags: number): void {
    this.handle.setShutdown(flags);
  }

  getShutdown(): number {
    return this.handle.getShutdown();
  }

  setNoDelay(noDelay: boolean): void {
    this.handle.setNoDelay(noDelay);
  }

  setKeepAlive(enable: boolean, initialDelay: number): void {
    this.handle.setKeepAlive(enable, Math.floor(initialDelay / 1000));
  }

  private drained(err?: Error): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const cb of waiters) cb(err);
  }
}

function limit(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  return value;
}

/**
 * A TLS server whose sockets, handshakes, session cache and record crypto live in native code on
 * Node's event loop. JavaScript sees each connection once its handshake is done.
 */
export class Server extends EventEmitter<ServerEvents> {
  /** The context: certificate, options and the session cache. */
  readonly context: SecureContext;
  private readonly native: NativeServer;
  // Native holds this weakly except while listening; the facade keeps it alive.
  private readonly owner: object;
  private isListening = false;

  constructor(options: ServerOptions = {}, listener?: (connection: TLSConnection) => void) {
    super();
    this.context = options.context ?? new SecureContext(options);
    if (!(this.context instanceof SecureContext)) throw new TypeError('options.context must be a SecureContext');
    const limits = {
      policy: policyCode(options.uncleanClose),
      handshakeTimeout: limit(options.handshakeTimeout, 10000, 'handshakeTimeout'),
      maxConnections: limit(options.maxConnections, 0, 'maxConnections'),
      maxPendingHandshakes: limit(options.maxPendingHandshakes, 0, 'maxPendingHandshakes'),
      highWaterMark: limit(options.highWaterMark, 64 * 1024, 'highWaterMark'),
    };
    // Native calls back into the methods below; nothing else crosses per connection.
    const owner = {
      _onconnection: (h: NativeHandle, ra: string, rp: number, la: string, lp: number) =>
        this.onConnection(h, ra, rp, la, lp),
      _ontlsclienterror: (code: string, reason: string, ra: string, rp: number) => {
        const err = new TLSError(code as TLSErrorCode, reason, `${reason} (client ${ra}:${rp})`);
        this.emit('tlsClientError', err, { remoteAddress: ra, remotePort: rp });
      },
      _onclose: () => {
        this.isListening = false;
        this.emit('close');
      },
    };
    this.owner = owner;
    this.native = new binding.TcpServer(this.context.native, limits, this.owner);
    if (listener) this.on('secureConnection', listener);
  }

  /** True while the server accepts connections. */
  get listening(): boolean {
    return this.isListening;
  }

  /**
   * Starts listening, like `net.Server.listen`. Errors (e.g. `EADDRINUSE`) are emitted as `error`
   * with a Node-style `code`.
   */
  listen(port?: number, host?: string, cb?: () => void): this;
  listen(options: ListenOptions, cb?: () => void): this;
  listen(a?: number | ListenOptions, b?: string | (() => void), c?: () => void): this {
    const opts: ListenOptions = typeof a === 'object' && a !== null ? a : { port: a, host: typeof b === 'string' ? b : undefined };
    const cb = typeof b === 'function' ? b : c;
    const port = opts.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port must be 0..65535, got ${port}`);
    if (cb) this.once('listening', cb);
    const start = (address: string) => {
      try {
        this.native.listen(address, port, opts.backlog ?? 511, Boolean(opts.ipv6Only), Boolean(opts.reusePort));
      } catch (err) {
        const e = err as { code?: string; errno?: number; syscall?: string; message: string };
        if (opts.host === undefined && address === '::' && e.code === 'EAFNOSUPPORT') return start('0.0.0.0');
        const sys = new SystemError(e.code ?? 'EINVAL', e.errno ?? 0, e.syscall ?? 'listen', `${e.message} ${address}:${port}`);
        process.nextTick(() => this.emit('error', sys));
        return;
      }
      this.isListening = true;
      process.nextTick(() => this.emit('listening'));
    };
    const host = opts.host ?? '::';
    if (isIP(host)) start(host);
    else lookup(host, (err, address) => (err ? this.emit('error', err) : start(address)));
    return this;
  }

  /** The bound address, or null when not listening. */
  address(): AddressInfo | null {
    return this.native.address();
  }

  /** Stops accepting; `close` fires once every open connection has closed too (as node:net). */
  close(cb?: (err?: Error) => void): this {
    if (!this.isListening) {
      // Never listened, listen failed, or already closed: native has nothing to close and would never
      // report back. As node:net: `close` fires, and the callback gets ERR_SERVER_NOT_RUNNING.
      if (cb) {
        const err = Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' });
        this.once('close', () => cb(err));
      }
      process.nextTick(() => this.emit('close'));
      return this;
    }
    if (cb) this.once('close', cb);
    this.native.close();
    return this;
  }

  /** Destroys every open connection (handshaking ones too). */
  closeAllConnections(): void {
    this.native.closeConnections();
  }

  /** Server counters: accepted, handshakes, resumed, failures, limits hit, open connections. */
  stats(): ServerStats {
    return this.native.stats();
  }

  private onConnection(h: NativeHandle, ra: string, rp: number, la: string, lp: number): void {
    const conn = new TLSConnection();
    conn.attach(new NativeTransport(h, conn, ra, rp, la, lp));
    conn._onSecure(() => h.info());
    this.emit('secureConnection', conn);
  }
}

/**
 * Creates a native TLS server (see {@link Server}).
 *
 * @example
 * const server = createServer({ certFile: 'cert.pem', keyFile: 'key.pem' }, (conn) => conn.pipe(conn));
 * server.listen(4433, () => console.log('listening', server.address()));
 */
export function createServer(options?: ServerOptions, listener?: (connection: TLSConnection) => void): Server {
  return new Server(options, listener);
}
