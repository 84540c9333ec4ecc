// createServer: the native TCP transport under a node:net / node:tls style Server.
import cluster from 'node:cluster';
import { lookup } from 'node:dns';
import type { EventEmitter } from 'node:events';
import net, { isIP } from 'node:net';

import binding, {
  Ask,
  NativeLive,
  NativeOutcome,
  NativeSecureContext,
  NativeSessionInfo,
  NativeStoreWork,
} from './binding';
import {
  SecureTLSConnection,
  TLSConnection,
  Transport,
  UncleanClosePolicy,
  outcomeError,
  policyCode,
} from './connection';
import { SecureContext, SecureContextOptions, contextFrom } from './context';
import { SystemError, TLSError } from './errors';
import { EmitterEvents, TypedEventEmitter } from './events';
import { integerOption } from './options';
import type { SessionTier } from './store';

/** @internal Hands the engine's store work to the tier (writes behind, deletes). */
export function applyStoreWork(
  tier: SessionTier | null,
  writes: NativeStoreWork[0],
  deletes: NativeStoreWork[1],
): void {
  if (!tier) return;
  for (const [id, der, ttl] of writes) tier.write(id, der, ttl);
  for (const id of new Set(deletes.map((d) => d.toString('hex')))) tier.delete(Buffer.from(id, 'hex'));
}

/**
 * node's `SNICallback`: called with the server name a client asked for (only when it asked for one);
 * `callback(null, context)` serves the client with that {@link SecureContext}, `callback(null)` (or
 * `undefined`) with the server's own, and `callback(err)` fails that client's handshake alone
 * (`tlsClientError`, an `unrecognized_name` alert).
 */
export type SNICallback = (
  servername: string,
  callback: (err: Error | null, context?: SecureContext | null) => void,
) => void;

/** node's `OCSPRequest` listener: `callback(null, response)` staples the DER response, `callback(null, null)` none. */
export type OCSPRequestListener = (
  certificate: Buffer,
  issuer: Buffer | null,
  callback: (err: Error | null, response?: Buffer | null) => void,
) => void;

/** @internal Runs an SNICallback once for a suspended handshake and passes its answer on, checked. */
export function askSNI(
  sni: SNICallback,
  self: unknown,
  servername: string,
  answer: (context: SecureContext | null, error?: string) => void,
): void {
  let done = false;
  const reply = (err: unknown, context?: unknown): void => {
    if (done) return; // node destroys the socket on a second call; here the handshake went on already
    done = true;
    if (err) return answer(null, err instanceof Error ? err.message : String(err));
    if (context === undefined || context === null) return answer(null);
    if (!(context instanceof SecureContext)) return answer(null, 'SNICallback: the context must be a SecureContext');
    answer(context);
  };
  try {
    sni.call(self, servername, reply);
  } catch (err) {
    reply(err instanceof Error ? err : new Error(String(err)));
  }
}

/** @internal Emits OCSPRequest once for a suspended handshake and passes the answer on, checked. */
export function askOCSP(
  emitter: EventEmitter,
  cert: Buffer,
  issuer: Buffer | null,
  answer: (response: Buffer | null, error?: string) => void,
): void {
  if (emitter.listenerCount('OCSPRequest') === 0) return answer(null);
  let done = false;
  const reply = (err: unknown, response?: unknown): void => {
    if (done) return;
    done = true;
    if (err) return answer(null, err instanceof Error ? err.message : String(err));
    if (response === undefined || response === null) return answer(null);
    if (!(response instanceof Uint8Array)) return answer(null, 'OCSPRequest: the response must be a Buffer');
    answer(Buffer.from(response));
  };
  try {
    emitter.emit('OCSPRequest', cert, issuer, reply);
  } catch (err) {
    reply(err instanceof Error ? err : new Error(String(err)));
  }
}

/** Options of {@link createServer}: the SecureContext options (or a shared `context`) plus limits. */
export interface ServerOptions extends SecureContextOptions {
  /**
   * node's `SNICallback(servername, callback)`: picks the context for a client's server name, possibly
   * asynchronously (the handshake waits). Without it, names resolve natively through `contexts` /
   * `addContext()`; with it, it alone decides (as in node:tls).
   */
  SNICallback?: SNICallback;
  /** Share a context (and so one session cache) between servers; built from the other options when absent. */
  context?: SecureContext;
  /** Session of a peer that disconnects without close_notify: `'keep'` it cached (default) or `'drop'` it. */
  uncleanClose?: UncleanClosePolicy;
  /** Milliseconds a client has to complete its handshake; 0 disables. Default 10000; at most 2³¹−1. */
  handshakeTimeout?: number;
  /** Open connections (handshaking or not) beyond which new ones are closed at once; 0 = no limit. Default 0; at most 2³²−1. */
  maxConnections?: number;
  /** Concurrent unfinished handshakes beyond which new connections are closed at once; 0 = no limit. Default 0; at most 2³²−1. */
  maxPendingHandshakes?: number;
  /** Bytes of ciphertext queued on a socket before `write()` returns false. Default 65536; at most 2³¹−1. */
  highWaterMark?: number;
}

/** Where to listen. */
export interface ListenOptions {
  /** Port; 0 (default) picks a free one. */
  port?: number;
  /** Address or host name. Default `'::'` (all addresses, IPv4 too), falling back to `'0.0.0.0'`. */
  host?: string;
  /** Listen backlog. Default 511. (`path`, for IPC, is not supported: a TypeError.) */
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

/** Events of {@link Server}; every EventEmitter method of the class reads this map. */
export interface ServerEvents extends EmitterEvents {
  listening: [];
  /** A client completed its handshake: its `session` is set. */
  secureConnection: [connection: SecureTLSConnection];
  /**
   * As node:tls: a line of the NSS key log (a Buffer, newline included) of `connection`, for
   * Wireshark or SSLKEYLOGFILE. The handshake's lines come before `secureConnection`. Collected only
   * while a listener is attached, for connections accepted from then on; lines of a handshake that
   * failed are not reported.
   */
  keylog: [line: Buffer, connection: TLSConnection];
  /** A handshake failed or timed out; the server goes on. */
  tlsClientError: [error: TLSError, client: ClientInfo];
  /**
   * A client asked for OCSP stapling (status_request) in a full handshake: answer with the DER response
   * (`callback(null, response)`), none (`callback(null, null)`), or fail that handshake (`callback(err)`).
   * The handshake waits; asked only while someone listens (else the context's `ocspResponse` applies).
   */
  OCSPRequest: Parameters<OCSPRequestListener>;
  close: [];
  error: [error: Error];
}

/**
 * The connection listener of {@link createServer} (a `secureConnection` listener), and what the handler
 * module of a threaded server exports.
 */
export type ConnectionListener = (connection: SecureTLSConnection) => void;

/**
 * The native server's per-connection calls (native/tcp_server.cc Conn*): a connection has no JS handle
 * of its own, only an id (a slot of the server's table and its generation). Every call is safe with
 * any id: one the server does not hold (closed, destroyed, stale) does nothing, as for a gone connection.
 */
interface NativeConnections {
  writev(id: number, chunks: Buffer[]): boolean;
  end(id: number): void;
  readStart(id: number): void;
  readStop(id: number): void;
  /** The verdict (with [4] the packed facts if never asked for), or undefined when the close was already reported. */
  destroy(id: number): [...NativeOutcome, string | undefined] | undefined;
  setShutdown(id: number, flags: number): void;
  getShutdown(id: number): number;
  setNoDelay(id: number, on: boolean): void;
  setKeepAlive(id: number, on: boolean, delaySeconds: number): void;
  /** The packed addresses and session facts (see {@link parseFacts}), or undefined for a gone id. */
  facts(id: number): string | undefined;
  live(id: number, ...args: Parameters<NativeLive>): ReturnType<NativeLive>;
}

interface NativeServer extends NativeConnections {
  listen(host: string, port: number, backlog: number, ipv6Only: boolean, reusePort: boolean): void;
  /** Serving without a listener of its own: only adopted sockets. */
  serve(): void;
  /** Serves an accepted socket by a duplicate of its descriptor. */
  adopt(fd: number): void;
  address(): AddressInfo | null;
  /** False when not listening. */
  close(): boolean;
  closeConnections(): void;
  /** Whether the listener keeps the event loop alive. */
  setRef(on: boolean): void;
  /** Whether connections accepted from now on collect their key log lines. */
  setKeylog(on: boolean): void;
  /** What new connections ask JS ({@link Ask} bits). */
  setAsk(bits: number): void;
  resolveServername(token: number, context: NativeSecureContext | null, error?: string): void;
  resolveOcsp(token: number, response: Buffer | null, error?: string): void;
  /** The store's answer to lookup(token): whether the session was taken; undefined when the connection is gone. */
  resolveLookup(token: number, der: Buffer | null): boolean | undefined;
}

/** The slots of the counters' Float64Array (native/tcp_server.h ServerCounters), in order. */
export const COUNTER_NAMES = [
  'accepted',
  'handshakes',
  'resumed',
  'handshakeFailures',
  'handshakeTimeouts',
  'rejectedMaxConnections',
  'rejectedMaxPendingHandshakes',
  'connections',
  'pendingHandshakes',
] as const;

/** @internal ServerOptions key (a symbol: no user option collides) for counters in shared memory. */
export const COUNTERS = Symbol('counters');

/** @internal The counters of one server as ServerStats. */
export function statsOf(counters: Float64Array): ServerStats {
  const out = {} as ServerStats;
  COUNTER_NAMES.forEach((name, i) => (out[name] = counters[i]));
  return out;
}

/** The native server's calls into JS, registered once (native/tcp_server.h ServerCallbacks). */
interface NativeServerCallbacks {
  /**
   * A connection's handshake is done: `id` names it from now on. `first`: plaintext that arrived with the
   * client's Finished (one call instead of two); `keylog`: the handshake's key log lines. True: taken.
   */
  connection(id: number, first: Buffer | undefined, keylog: Buffer[] | undefined): boolean;
  clientError(code: string, reason: string, ra: string, rp: number): void;
  close(): void;
  lookup(token: number, id: Buffer): void;
  servername(token: number, servername: string): void;
  ocsp(token: number, certificate: Buffer, issuer: Buffer | null): void;
  storeWork(writes: NativeStoreWork[0], deletes: NativeStoreWork[1]): void;
  read(id: number, chunk: Buffer): boolean;
  end(id: number): void;
  drain(id: number): void;
  /** The id is void from here on; `facts` come when JS never asked for them. */
  closed(id: number, outcome: NativeOutcome, facts: string | undefined): void;
  keylog(id: number, lines: Buffer[]): void;
}

/** A connection's addresses and session facts, as {@link parseFacts} reads them. */
interface ConnectionFacts {
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  localAddress: string | undefined;
  localPort: number | undefined;
  session: NativeSessionInfo;
}

const NON_ASCII = /[\u0080-\u00ff]/;

/**
 * @internal Reads native/tcp_connection.cc TcpConnection::Facts(): remoteAddress, remotePort,
 * localAddress, localPort, reused, protocol, cipher, cipherStandardName, certRequested, verifyCode,
 * verifyError, id (hex), ALPN length, server name length, each ended by a NUL, then the ALPN protocol,
 * the server name and the peer certificate as raw bytes (latin1).
 */
export function parseFacts(packed: string): ConnectionFacts {
  const f: string[] = [];
  let at = 0;
  for (let i = 0; i < 14; i++) {
    const end = packed.indexOf('\0', at);
    f.push(packed.slice(at, end));
    at = end + 1;
  }
  const alpnEnd = at + Number(f[12]);
  const nameEnd = alpnEnd + Number(f[13]);
  // ALPN and SNI are bytes; node reads them as UTF-8 (ASCII in practice, kept as is).
  const text = (s: string): string | null =>
    s === '' ? null : NON_ASCII.test(s) ? Buffer.from(s, 'latin1').toString('utf8') : s;
  const cert = packed.slice(nameEnd);
  const address = (s: string): string | undefined => (s === '' ? undefined : s);
  const port = (a: string, p: string): number | undefined => (a === '' ? undefined : Number(p));
  return {
    remoteAddress: address(f[0]),
    remotePort: port(f[0], f[1]),
    localAddress: address(f[2]),
    localPort: port(f[2], f[3]),
    session: {
      reused: f[4] === '1',
      protocol: f[5],
      cipher: f[6],
      cipherStandardName: f[7],
      certRequested: f[8] === '1',
      verifyCode: f[9] === '' ? null : f[9],
      verifyError: f[10] === '' ? null : f[10],
      id: Buffer.from(f[11], 'hex'),
      alpn: text(packed.slice(at, alpnEnd)),
      servername: text(packed.slice(alpnEnd, nameEnd)),
      peerCertificate: cert === '' ? null : Buffer.from(cert, 'latin1'),
    },
  };
}

/** A connection of the native server, as TLSConnection's transport. */
class TcpTransport implements Transport {
  private drainWaiters: Array<(err?: Error | null) => void> = [];
  // The packed facts once asked for or handed over with the close; parsed on first use.
  packed: string | undefined = undefined;
  private parsed: ConnectionFacts | undefined = undefined;

  constructor(
    private readonly native: NativeConnections,
    // The server's connections by id: this one leaves it at its close or destroy().
    private readonly table: Map<number, TcpTransport>,
    readonly id: number,
    readonly conn: TLSConnection,
  ) {}

  private facts(): ConnectionFacts | undefined {
    if (this.parsed === undefined) {
      this.packed ??= this.native.facts(this.id);
      if (this.packed !== undefined) this.parsed = parseFacts(this.packed);
    }
    return this.parsed;
  }

  get remoteAddress(): string | undefined {
    return this.facts()?.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.facts()?.remotePort;
  }

  get localAddress(): string | undefined {
    return this.facts()?.localAddress;
  }

  get localPort(): number | undefined {
    return this.facts()?.localPort;
  }

  write(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    let ok: boolean;
    try {
      ok = this.native.writev(this.id, chunks);
    } catch (err) {
      return cb(new TLSError('ERR_OSC_TLS', (err as Error).message));
    }
    if (ok) cb();
    else this.drainWaiters.push(cb);
  }

  end(cb: () => void): void {
    this.native.end(this.id);
    cb();
  }

  pause(): void {
    this.native.readStop(this.id);
  }

  resume(): void {
    this.native.readStart(this.id);
  }

  destroy(): NativeOutcome | undefined {
    this.closed();
    this.table.delete(this.id);
    const r = this.native.destroy(this.id);
    if (r !== undefined && r[4] !== undefined) this.packed ??= r[4];
    return r as NativeOutcome | undefined; // [4] is ignored by readers of an outcome
  }

  setShutdown(flags: number): void {
    this.native.setShutdown(this.id, flags);
  }

  getShutdown(): number {
    return this.native.getShutdown(this.id);
  }

  setNoDelay(noDelay: boolean): void {
    this.native.setNoDelay(this.id, noDelay);
  }

  setKeepAlive(enable: boolean, initialDelay: number): void {
    this.native.setKeepAlive(this.id, enable, Math.floor(initialDelay / 1000));
  }

  info(): NativeSessionInfo | null {
    // Null only for a connection torn down with its environment: otherwise the facts come with the close.
    return this.facts()?.session ?? null;
  }

  get live(): NativeLive {
    return ((...args: Parameters<NativeLive>) => this.native.live(this.id, ...args)) as NativeLive;
  }

  drained(err?: Error): void {
    const waiters = this.drainWaiters;
    if (waiters.length === 0) return;
    this.drainWaiters = [];
    for (const cb of waiters) cb(err);
  }

  // The connection is gone: writes still waiting for 'drain' fail. (The error only when one waits:
  // capturing its stack costs about a tenth of a whole resumed connection.)
  closed(): void {
    if (this.drainWaiters.length > 0) this.drained(new TLSError('ERR_OSC_CLOSED', 'connection closed'));
  }
}

/** @internal */
export const SERVER_ONLY_OPTIONS = [
  'context',
  'SNICallback',
  'uncleanClose',
  'handshakeTimeout',
  'maxConnections',
  'maxPendingHandshakes',
  'highWaterMark',
] as const;
const LISTEN_OPTIONS = new Set(['port', 'host', 'backlog', 'ipv6Only', 'reusePort']);

/** Server states, as node:net has them: listen() only when idle, close() only when listening. */
type ServerState = 'idle' | 'resolving' | 'listening' | 'closing';

/**
 * A TLS server whose sockets, handshakes, session cache and record crypto live in native code on
 * Node's event loop. JavaScript sees each connection once its handshake is done.
 */
export class Server extends TypedEventEmitter<ServerEvents> {
  /** The context: certificate, options and the session cache. */
  readonly context: SecureContext;
  private readonly native: NativeServer;
  // Native holds these weakly except while listening; the facade keeps them alive.
  private readonly callbacks: NativeServerCallbacks;
  private readonly counters: Float64Array;
  private readonly transports = new Map<number, TcpTransport>();
  private state: ServerState = 'idle';
  // Under cluster: the net.Server that takes connections from the cluster and hands them over.
  private front: net.Server | null = null;

  constructor(options: ServerOptions = {}, listener?: ConnectionListener) {
    super();
    if (typeof options !== 'object' || options === null) throw new TypeError('createServer options must be an object');
    if (listener !== undefined && typeof listener !== 'function') {
      throw new TypeError('the connection listener must be a function');
    }
    this.context = contextFrom(options, SERVER_ONLY_OPTIONS, 'createServer');
    const limits = serverLimits(options);
    // The connections JS holds, by id: from the connection callback to closed / destroy().
    const transports = this.transports;
    this.callbacks = {
      connection: (id, first, keylog) => this.onConnection(id, first, keylog),
      read: (id, chunk) => transports.get(id)?.conn._onData(chunk) ?? true,
      end: (id) => transports.get(id)?.conn._onEnd(),
      drain: (id) => transports.get(id)?.drained(),
      closed: (id, outcome, facts) => {
        const t = transports.get(id);
        if (t === undefined) return;
        transports.delete(id);
        if (facts !== undefined) t.packed ??= facts;
        t.closed();
        t.conn._onClose(outcome);
      },
      keylog: (id, lines) => {
        const t = transports.get(id);
        if (t) for (const line of lines) this.emit('keylog', line, t.conn);
      },
      clientError: (code, reason, ra, rp) => {
        const err = outcomeError(code, reason);
        err.message = `${reason} (client ${ra}:${rp})`;
        this.emit('tlsClientError', err as TLSError, { remoteAddress: ra, remotePort: rp });
      },
      close: () => {
        this.state = 'idle';
        this.front = null;
        process.nextTick(() => this.emit('close'));
      },
      lookup: (token, id) => {
        const tier = this.context.tier;
        if (!tier) return void this.native.resolveLookup(token, null);
        void tier.lookup(id).then((der) => {
          const taken = this.native.resolveLookup(token, der);
          if (der && taken !== undefined) tier.taken(taken);
        });
      },
      storeWork: (writes, deletes) => applyStoreWork(this.context.tier, writes, deletes),
      servername: (token, name) => {
        if (!this.sni) return this.native.resolveServername(token, null);
        askSNI(this.sni, this, name, (ctx, error) => this.native.resolveServername(token, ctx?.native ?? null, error));
      },
      ocsp: (token, cert, issuer) =>
        askOCSP(this, cert, issuer, (response, error) => this.native.resolveOcsp(token, response, error)),
    };
    this.counters = (options as { [COUNTERS]?: Float64Array })[COUNTERS] ?? new Float64Array(COUNTER_NAMES.length);
    this.native = new binding.TcpServer(this.context.native, limits, this.callbacks, this.counters);
    this.sni = limits.SNICallback;
    this.updateAsk();
    if (listener) this.on('secureConnection', listener);
    // OCSPRequest suspends handshakes, and key log lines cost a string per secret and a crossing: each
    // only while someone listens ('newListener' comes before the listener is added).
    this.on('newListener', (name) => {
      if (name === 'OCSPRequest') this.updateAsk(true);
      if (name === 'keylog') this.native.setKeylog(true);
    });
    this.on('removeListener', (name) => {
      if (name === 'OCSPRequest') this.updateAsk();
      if (name === 'keylog' && this.listenerCount('keylog') === 0) this.native.setKeylog(false);
    });
  }

  /** As node:tls `server.getTicketKeys()`: the context's current ticket key (48 bytes). */
  getTicketKeys(): Buffer {
    return this.context.getTicketKeys();
  }

  /** As node:tls `server.setTicketKeys()`, with rotation: see {@link SecureContext.setTicketKeys}. */
  setTicketKeys(keys: Buffer): void {
    this.context.setTicketKeys(keys);
  }

  private readonly sni: SNICallback | undefined;

  private updateAsk(adding = false): void {
    const ocsp = adding || this.listenerCount('OCSPRequest') > 0 ? Ask.Ocsp : 0;
    this.native.setAsk((this.sni ? Ask.Servername : 0) | ocsp);
  }

  /**
   * SNI, as node's `server.addContext()`: clients asking for `hostname` (node's wildcards: `*` is any
   * run of characters without a dot) get `context` — a SecureContext or its options. The last added
   * match wins. It is added to the server's context (see {@link SecureContext.addContext}), so every
   * server and thread serving that context sees it; with an `SNICallback`, the callback decides instead.
   */
  addContext(hostname: string, context: SecureContext | SecureContextOptions): void {
    this.context.addContext(hostname, context);
  }

  /** True while the server accepts connections. */
  get listening(): boolean {
    return this.state === 'listening';
  }

  /**
   * Starts listening, like `net.Server.listen`. Errors (e.g. `EADDRINUSE`) are emitted as `error`
   * with a Node-style `code`. Throws `ERR_SERVER_ALREADY_LISTEN` unless the server is idle.
   */
  listen(port?: number, host?: string, cb?: () => void): this;
  listen(options: ListenOptions, cb?: () => void): this;
  listen(a?: number | ListenOptions, b?: string | (() => void), c?: () => void): this {
    const opts = listenOptions(a, b);
    const cb = typeof b === 'function' ? b : c;
    if (cb !== undefined && typeof cb !== 'function') throw new TypeError('the listen callback must be a function');
    if (this.state !== 'idle') {
      throw Object.assign(new Error('Listen method has been called more than once without closing.'), {
        code: 'ERR_SERVER_ALREADY_LISTEN',
      });
    }
    const port = opts.port ?? 0;
    if (cb) this.once('listening', cb);
    if (cluster.isWorker) return this.listenInCluster(opts);
    const start = (address: string): void => {
      if (this.state !== 'resolving') return; // closed while the host name was being looked up
      try {
        this.native.listen(address, port, opts.backlog ?? 511, Boolean(opts.ipv6Only), Boolean(opts.reusePort));
      } catch (err) {
        const e = err as { code?: string; errno?: number; syscall?: string; message: string };
        if (opts.host === undefined && address === '::' && e.code === 'EAFNOSUPPORT') return start('0.0.0.0');
        this.state = 'idle';
        const sys = new SystemError(
          e.code ?? 'EINVAL',
          e.errno ?? 0,
          e.syscall ?? 'listen',
          `${e.message} ${address}:${port}`,
        );
        process.nextTick(() => this.emit('error', sys));
        return;
      }
      this.state = 'listening';
      process.nextTick(() => this.emit('listening'));
    };
    this.state = 'resolving';
    const host = opts.host ?? '::';
    if (isIP(host)) start(host);
    else
      lookup(host, (err, address) => {
        if (!err) return start(address);
        if (this.state === 'resolving') this.state = 'idle';
        this.emit('error', err);
      });
    return this;
  }

  /** The bound address, or null when not listening. */
  address(): AddressInfo | null {
    if (this.front) return (this.front.address() as AddressInfo | null) ?? null;
    return this.native.address();
  }

  /**
   * Serves a TCP socket that was accepted elsewhere — by a `net.Server` of yours created with
   * `pauseOnConnect: true`, say — on the native transport: the TLS handshake starts here, and
   * `secureConnection` follows as for any other client. The socket must not have been read from; it is
   * destroyed (the native side keeps a duplicate of its descriptor). An idle server starts serving
   * (without a port of its own) until `close()`. Not on Windows yet.
   */
  adopt(socket: net.Socket): this {
    const fd = (socket as unknown as { _handle?: { fd?: unknown } } | null)?._handle?.fd;
    if (!(socket instanceof net.Socket) || typeof fd !== 'number' || fd < 0 || socket.destroyed) {
      throw new TypeError('adopt() takes a connected TCP net.Socket');
    }
    if (socket.bytesRead > 0 || socket.readableLength > 0) {
      throw new TypeError('adopt(): the socket was already read from (use pauseOnConnect: true)');
    }
    if (this.state === 'idle') {
      this.native.serve();
      this.state = 'listening';
    } else if (this.state !== 'listening') {
      throw Object.assign(new Error('adopt(): the server is closing.'), { code: 'ERR_SERVER_NOT_RUNNING' });
    }
    try {
      this.native.adopt(fd);
    } finally {
      socket.destroy();
    }
    return this;
  }

  // In a cluster worker: the cluster hands connections (or the listening handle) to a net.Server; its
  // sockets, paused before any read, are adopted by the native transport.
  private listenInCluster(opts: ListenOptions): this {
    const front = net.createServer({ pauseOnConnect: true }, (socket) => {
      try {
        this.adopt(socket);
      } catch (err) {
        socket.destroy();
        this.emit('error', err as Error);
      }
    });
    this.front = front;
    this.state = 'resolving';
    front.once('error', (err) => {
      if (this.front !== front) return;
      this.front = null;
      this.state = 'idle';
      this.emit('error', err);
    });
    front.listen({ port: opts.port ?? 0, host: opts.host, backlog: opts.backlog, ipv6Only: opts.ipv6Only }, () => {
      if (this.front !== front || this.state !== 'resolving') return;
      this.native.serve();
      this.state = 'listening';
      this.emit('listening');
    });
    return this;
  }

  /**
   * Stops accepting; `close` fires once every open connection has closed too (as node:net). When the
   * server is not listening (never was, already closing or closed), the callback gets an
   * `ERR_SERVER_NOT_RUNNING` error when `close` fires, as node:net does.
   */
  close(cb?: (err?: Error) => void): this {
    if (cb !== undefined && typeof cb !== 'function') throw new TypeError('the close callback must be a function');
    if (this.front && this.state !== 'closing') this.front.close();
    if (this.state === 'listening') {
      this.state = 'closing';
      if (cb) this.once('close', cb);
      this.native.close();
      return this;
    }
    if (this.front && this.state === 'resolving') this.front = null;
    if (cb) {
      const err = Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' });
      this.once('close', () => cb(err));
    }
    if (this.state === 'resolving') this.state = 'idle'; // listen() is abandoned
    // Closing: the pending close comes. Otherwise nothing runs and `close` fires at once, as in node:net.
    if (this.state !== 'closing') process.nextTick(() => this.emit('close'));
    return this;
  }

  /** As net.Server#ref(): the listener keeps the event loop alive (the default). */
  ref(): this {
    this.native.setRef(true);
    this.front?.ref();
    return this;
  }

  /** As net.Server#unref(): the listener does not keep the process alive; open connections still do. */
  unref(): this {
    this.native.setRef(false);
    this.front?.unref();
    return this;
  }

  /** As net.Server#getConnections(): the open connections (handshaking ones too), on the next tick. */
  getConnections(cb: (err: Error | null, count: number) => void): this {
    if (typeof cb !== 'function') throw new TypeError('getConnections takes a callback');
    const count = this.stats().connections;
    process.nextTick(() => cb(null, count));
    return this;
  }

  /** Destroys every open connection (handshaking ones too). Safe in every state. */
  closeAllConnections(): void {
    this.native.closeConnections();
  }

  /** Server counters: accepted, handshakes, resumed, failures, limits hit, open connections. */
  stats(): ServerStats {
    return statsOf(this.counters);
  }

  private onConnection(id: number, first: Buffer | undefined, keylog: Buffer[] | undefined): boolean {
    const conn = new TLSConnection();
    const transport = new TcpTransport(this.native, this.transports, id, conn);
    conn.attach(transport);
    this.transports.set(id, transport);
    try {
      if (keylog) for (const line of keylog) this.emit('keylog', line, conn);
      conn._onSecure(() => transport.info());
      this.emit('secureConnection', conn as SecureTLSConnection);
      // The first plaintext, as the read callback would have delivered it; false: pause reading.
      if (first !== undefined && !conn.destroyed && !conn._onData(first)) this.native.readStop(id);
    } catch (err) {
      // A listener threw: native closes the connection and tells JS nothing more of it.
      transport.packed ??= this.native.facts(id);
      this.transports.delete(id);
      throw err;
    }
    return true;
  }
}

// As net.Server's: `await using server = createServer(...)` closes it (resolves at once when not listening).
const asyncDispose = (Symbol as { asyncDispose?: symbol }).asyncDispose;
if (asyncDispose) {
  Object.defineProperty(Server.prototype, asyncDispose, {
    value(this: Server): Promise<void> {
      return new Promise<void>((resolve) => (this.listening ? this.close(() => resolve()) : resolve()));
    },
    configurable: true,
    writable: true,
  });
}

/** @internal The server-only options, checked, as native/tcp_server.h ServerLimits takes them. */
export function serverLimits(options: ServerOptions) {
  if (options.SNICallback !== undefined && typeof options.SNICallback !== 'function') {
    throw new TypeError('SNICallback must be a function (servername, callback)');
  }
  return {
    SNICallback: options.SNICallback,
    policy: policyCode(options.uncleanClose),
    handshakeTimeout: integerOption(options.handshakeTimeout, 10000, 'handshakeTimeout', 2 ** 31 - 1),
    maxConnections: integerOption(options.maxConnections, 0, 'maxConnections', 2 ** 32 - 1),
    maxPendingHandshakes: integerOption(options.maxPendingHandshakes, 0, 'maxPendingHandshakes', 2 ** 32 - 1),
    highWaterMark: integerOption(options.highWaterMark, 64 * 1024, 'highWaterMark', 2 ** 31 - 1),
  };
}

/** @internal listen()'s arguments, checked. */
export function listenOptions(a: unknown, b: unknown): ListenOptions {
  if (typeof a === 'object' && a !== null) {
    for (const key of Object.keys(a)) {
      if (key === 'path') throw new TypeError('listen({ path }) is not supported: this server listens on TCP only');
      if (!LISTEN_OPTIONS.has(key)) throw new TypeError(`listen: unknown option '${key}'`);
    }
    const o = a as ListenOptions;
    checkPort(o.port);
    if (o.host !== undefined && typeof o.host !== 'string') throw new TypeError('listen: host must be a string');
    integerOption(o.backlog, 511, 'backlog', 2 ** 31 - 1);
    return o;
  }
  if (a !== undefined && a !== null && typeof a !== 'number') {
    throw new TypeError(`listen: port must be a number, got ${typeof a}`);
  }
  const port = a === null ? undefined : (a as number | undefined);
  checkPort(port);
  return { port, host: typeof b === 'string' ? b : undefined };
}

function checkPort(port: unknown): void {
  if (port === undefined) return;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`port must be an integer from 0 to 65535, got ${String(port)}`);
  }
}
