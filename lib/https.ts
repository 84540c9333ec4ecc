// createHttpsServer: HTTP/1.1 and HTTP/2 on one port, chosen by ALPN, over the native TLS transport.
//
// The HTTP side is node's own: an `http2.createSecureServer({ allowHTTP1 })` object that never listens.
// Each connection the native server has handshaken is handed to it as node:tls hands it a TLSSocket (its
// 'secureConnection' event), so node decides by `socket.alpnProtocol` between HTTP/2, HTTP/1.1 and its
// `unknownProtocol` answer, and every HTTP feature (request/stream/session/upgrade events, timeouts,
// closeIdleConnections, settings) is node's. The network side (listen, close, address, ref) is ours.
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2, { Http2ServerRequest, Http2ServerResponse, Http2Session, SecureServerOptions } from 'node:http2';

import type { TLSConnection } from './connection';
import type { SecureContext, SecureContextOptions } from './context';
import { booleanOption } from './options';
import { AddressInfo, ListenOptions, Server, ServerOptions, listenOptions } from './server';

/** Options of node's `http2.createSecureServer` that {@link createHttpsServer} passes on (the TLS ones are ours). */
const HTTP_OPTIONS = [
  'allowHTTP1',
  'origins',
  'settings',
  'remoteCustomSettings',
  'unknownProtocolTimeout',
  'maxSessionInvalidFrames',
  'maxSessionRejectedStreams',
  'maxDeflateDynamicTableSize',
  'maxHeaderListPairs',
  'maxOutstandingPings',
  'maxSendHeaderBlockLength',
  'maxSessionMemory',
  'maxSettings',
  'paddingStrategy',
  'peerMaxConcurrentStreams',
  'Http1IncomingMessage',
  'Http1ServerResponse',
  'Http2ServerRequest',
  'Http2ServerResponse',
] as const;

type HttpOptionName = (typeof HTTP_OPTIONS)[number];

/**
 * Options of {@link createHttpsServer}: those of {@link createServer} (certificate, cache, limits; not
 * `ALPNProtocols`, which follows `allowHTTP1`) plus the HTTP/2 options of node's `http2.createSecureServer`.
 */
export interface HttpsServerOptions
  extends Omit<ServerOptions, 'ALPNProtocols'>, Pick<SecureServerOptions, Exclude<HttpOptionName, 'allowHTTP1'>> {
  /**
   * Also serve HTTP/1.1: to clients that negotiate `http/1.1` or send no ALPN. Default `true` (node's
   * `http2.createSecureServer` defaults to `false`). With `false` the server offers only `h2`; a client
   * offering only `http/1.1` is refused in the handshake, and one offering no ALPN gets node's
   * `unknownProtocol` event (without a listener: a 403 text and the connection closed), as in node.
   */
  allowHTTP1?: boolean;
  /**
   * Offer HTTP/2 (`h2`). Default `true`. With `false` the server offers only `http/1.1` and serves as
   * `https.Server` does: for frameworks that do not take node's HTTP/2 compatibility requests (Express).
   * Needs `allowHTTP1`.
   */
  allowHTTP2?: boolean;
  /** @internal never a user option: ALPN follows allowHTTP1 */
  ALPNProtocols?: never;
}

/**
 * A request listener: HTTP/1.1 requests come as `http.IncomingMessage`/`ServerResponse`, HTTP/2 ones as
 * node's compatibility `Http2ServerRequest`/`Http2ServerResponse`. Declared as a method so that an
 * Express app, `koa.callback()` or Fastify's handler is accepted as it is.
 */
export type HttpsRequestListener = {
  bivarianceHack(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): unknown;
}['bivarianceHack'];

/**
 * What {@link createHttpsServer} returns: node's `http2.Http2SecureServer` (so every HTTP event, setting
 * and method is node's) whose network side is the native TLS {@link Server}.
 *
 * Differences from node's: `secureConnection` passes a {@link TLSConnection}; `tlsClientError` passes
 * `(err, { remoteAddress, remotePort })` (the native server has already closed the socket); `connection`,
 * `newSession` and `resumeSession` are never emitted (sessions live in the native cache); `keylog`
 * passes the {@link TLSConnection}; `setSecureContext` throws a TypeError (the certificate belongs to the
 * native context); `maxConnections` is an option, not a property to set.
 */
export interface HttpsServer extends http2.Http2SecureServer {
  /** The native TLS server underneath: `context` (the session cache), `stats()`, `adopt()`. */
  readonly tlsServer: Server;
  /** True while the server accepts connections. */
  readonly listening: boolean;
  /** The `maxConnections` option (0: no limit); read-only here. */
  readonly maxConnections: number;
  // listen(): net.Server's signatures. Takes `(port?, host?, cb?)` or `({ port, host, backlog, ipv6Only,
  // reusePort, signal }, cb?)`; as node's, other keys of the options object are ignored (frameworks add
  // their own); `path` (IPC) and handles are a TypeError.
  /** The bound address, or null when not listening. */
  address(): AddressInfo | null;
  /**
   * Stops accepting and closes idle HTTP/1.1 keep-alive connections (as node's, which also leaves HTTP/2
   * sessions to finish); `close` fires once every connection has closed. When not listening, `cb` gets
   * `ERR_SERVER_NOT_RUNNING`.
   */
  close(cb?: (err?: Error) => void): this;
  /** Destroys every open connection, HTTP/1.1 and HTTP/2 alike (node's HTTP/2 server has no such call). */
  closeAllConnections(): void;
  /** As `net.Server#ref()`. */
  ref(): this;
  /** As `net.Server#unref()`. */
  unref(): this;
  /** As `net.Server#getConnections()`: open TLS connections (handshaking ones too). */
  getConnections(cb: (err: Error | null, count: number) => void): this;
  /** Milliseconds of inactivity after which a connection (HTTP/1.1) or session (HTTP/2) times out; 0 = never. */
  timeout: number;
  /** HTTP/1.1: ms an idle keep-alive connection is kept. Default 5000, as `https.Server` (node's HTTP/2 server has none). */
  keepAliveTimeout: number;
  /** HTTP/1.1: ms to receive the request headers. Default 60000, as node. */
  headersTimeout: number;
  /** HTTP/1.1: ms to receive a whole request. Default 300000, as node. */
  requestTimeout: number;
  /** HTTP/1.1: most headers read from a request; null = node's default (2000). */
  maxHeadersCount: number | null;
  /** HTTP/1.1: most requests on one keep-alive connection; 0 = no limit. */
  maxRequestsPerSocket: number | null;
  /** Closes the HTTP/1.1 connections that have no request in flight (node's; `close()` calls it). */
  closeIdleConnections(): void;
  /** Throws a TypeError: the certificate belongs to the native context (`tlsServer.context`). */
  setSecureContext(options: unknown): never;
  /**
   * SNI: as node's, on the native server's context ({@link Server.addContext}). Takes this package's
   * {@link SecureContext} or its options (node's typing is accepted for compatibility; a node:tls
   * SecureContext, or an option this package lacks, is a TypeError at run time).
   */
  addContext(
    hostname: string,
    context: SecureContext | SecureContextOptions | Parameters<http2.Http2SecureServer['addContext']>[1],
  ): void;
  /** The native context's ticket key ({@link Server.getTicketKeys}; used with `tickets: true`). */
  getTicketKeys(): ReturnType<http2.Http2SecureServer['getTicketKeys']>;
  /** Rotates the native context's ticket key ({@link Server.setTicketKeys}). */
  setTicketKeys(keys: Buffer): void;
}

// The tls.TLSSocket reading surface that HTTP/2 requests see on `req.socket` and `session.socket`.
const SOCKET_SURFACE = [
  'encrypted',
  'authorized',
  'authorizationError',
  'alpnProtocol',
  'servername',
  'session',
  'getPeerCertificate',
  'getPeerX509Certificate',
  'getCertificate',
  'getX509Certificate',
  'getCipher',
  'getProtocol',
  'getSession',
  'getTLSTicket',
  'getEphemeralKeyInfo',
  'isSessionReused',
  'exportKeyingMaterial',
  'getFinished',
  'getPeerFinished',
  'getSharedSigalgs',
  'remoteAddress',
  'remotePort',
  'remoteFamily',
  'localAddress',
  'localPort',
  'address',
] as const;

const NOT_HERE = (name: string) =>
  new TypeError(
    `HttpsServer#${name}() is not supported: the TLS side is the native server's (give certificates and ` +
      'keys in the createHttpsServer options; server.tlsServer.context is its SecureContext)',
  );

/**
 * Serves HTTP/1.1 and HTTP/2 on one port, by ALPN, over the native TLS transport and its session cache:
 * the one call that replaces `https.createServer` and `http2.createSecureServer({ allowHTTP1: true })`.
 * The server offers `['h2', 'http/1.1']` (`['h2']` with `allowHTTP1: false`, `['http/1.1']` with
 * `allowHTTP2: false`, for Express, which does not take HTTP/2 requests); requests report
 * `req.socket.encrypted === true`, HTTP/2 sessions `encrypted === true` and `alpnProtocol === 'h2'`, and
 * `req.socket` offers the `tls.TLSSocket` reading surface (`getPeerCertificate()`, `authorized`, ...).
 *
 * @example
 * const server = createHttpsServer({ certFile: 'cert.pem', keyFile: 'key.pem' }, (req, res) => {
 *   res.end(`HTTP/${req.httpVersion}, session ${req.socket.isSessionReused() ? 'resumed' : 'new'}\n`);
 * });
 * server.listen(8443);
 *
 * @example
 * // Express (HTTP/1.1 only), Koa, Fastify: pass the app's handler
 * createHttpsServer({ cert, key, allowHTTP2: false }, expressApp).listen(443);
 * createHttpsServer({ cert, key }, koaApp.callback()).listen(443);
 * Fastify({ serverFactory: (handler) => createHttpsServer({ cert, key }, handler) });
 */
export function createHttpsServer(options: HttpsServerOptions = {}, requestListener?: HttpsRequestListener) {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('createHttpsServer options must be an object');
  if (requestListener !== undefined && typeof requestListener !== 'function') {
    throw new TypeError('the request listener must be a function');
  }
  if ((options as { ALPNProtocols?: unknown }).ALPNProtocols !== undefined) {
    throw new TypeError(
      "createHttpsServer: option 'ALPNProtocols' follows allowHTTP1 and allowHTTP2 (['h2', 'http/1.1'] by default)",
    );
  }
  const allowHTTP1 = booleanOption(options.allowHTTP1, true, 'allowHTTP1');
  const allowHTTP2 = booleanOption(options.allowHTTP2, true, 'allowHTTP2');
  if (!allowHTTP1 && !allowHTTP2)
    throw new RangeError('createHttpsServer: allowHTTP1 and allowHTTP2 cannot both be false');
  const httpOptions: Record<string, unknown> = {};
  const tlsOptions: Record<string, unknown> = {};
  const httpKeys = new Set<string>(HTTP_OPTIONS);
  for (const [key, value] of Object.entries(options)) {
    if (key !== 'allowHTTP2') (httpKeys.has(key) ? httpOptions : tlsOptions)[key] = value;
  }
  // With a shared `context`, its own ALPNProtocols apply (give it ['h2', 'http/1.1']).
  if (tlsOptions.context === undefined) {
    tlsOptions.ALPNProtocols = [...(allowHTTP2 ? ['h2'] : []), ...(allowHTTP1 ? ['http/1.1'] : [])];
  }
  const tlsServer = new Server(tlsOptions as ServerOptions);

  // Node's HTTP/2 + HTTP/1.1 server; it never listens. (Its tls.Server part makes an unused SSL_CTX.)
  const server = http2.createSecureServer(
    { ...httpOptions, allowHTTP1 },
    requestListener as (req: Http2ServerRequest, res: Http2ServerResponse) => void,
  ) as unknown as HttpsServer & NodeInternals;
  const base = Object.getPrototypeOf(server) as NodeInternals;
  // HTTP/1.1 keep-alive as https.Server has it (node's HTTP/2 server leaves it unset: never times out).
  server.keepAliveTimeout = 5000;
  server.maxHeadersCount = null;

  // Node's tlsClientError listener destroys the failed socket; the native server already closed it.
  server.removeAllListeners('tlsClientError');
  tlsServer.on('tlsClientError', (err, client) => server.emit('tlsClientError', err, client));
  tlsServer.on('error', (err) => server.emit('error', err));
  tlsServer.on('listening', () => server.emit('listening'));
  tlsServer.on('close', () => server.emit('close'));

  // A handshaken connection goes to node's connection listener, as a TLSSocket from node:tls would.
  let arriving: TLSConnection | null = null;
  tlsServer.on('secureConnection', (conn) => {
    // As a TLSSocket of node:tls, the connection names its server (node's HTTP/1.1 path needs it).
    (conn as unknown as { server: unknown }).server = server;
    arriving = conn;
    try {
      server.emit('secureConnection', conn);
    } finally {
      arriving = null;
    }
  });
  // Registered before any listener of the user's: fixes each HTTP/2 session before anyone sees it.
  server.on('session', (session: Http2Session) => {
    if (arriving) presentTls(session, arriving);
  });

  const listen = (...args: unknown[]) => {
    const cb = typeof args[args.length - 1] === 'function' ? (args.pop() as () => void) : undefined;
    let [a] = args;
    const b = args[1];
    let signal: AbortSignal | undefined;
    if (typeof a === 'object' && a !== null) {
      const { port, host, backlog, ipv6Only, reusePort, path } = a as ListenOptions & { path?: unknown };
      signal = (a as { signal?: AbortSignal }).signal;
      if (signal !== undefined && !(signal instanceof AbortSignal)) {
        throw new TypeError('listen: signal must be an AbortSignal');
      }
      const picked: Record<string, unknown> = { port, host, backlog, ipv6Only, reusePort, path };
      for (const k of Object.keys(picked)) if (picked[k] === undefined) delete picked[k];
      a = picked;
    }
    const opts = listenOptions(a, b);
    if (signal?.aborted) {
      process.nextTick(() => server.emit('close'));
      return server;
    }
    if (cb) server.once('listening', cb);
    try {
      tlsServer.listen(opts);
    } catch (err) {
      if (cb) server.removeListener('listening', cb);
      throw err;
    }
    signal?.addEventListener('abort', () => server.close(), { once: true });
    return server;
  };

  const close = (cb?: (err?: Error) => void) => {
    if (cb !== undefined && typeof cb !== 'function') throw new TypeError('the close callback must be a function');
    // Node's close: for HTTP/1.1, close idle keep-alive connections and stop the timeout checker (in
    // Node 24 it also closes HTTP/2 sessions). Its net.Server part has no handle and would emit 'close'
    // at once; a pending "connection" holds that back, as net.Server itself does while workers close.
    server._connections++;
    try {
      base.close.call(server);
    } finally {
      server._connections--;
    }
    tlsServer.close(cb ? (err) => cb.call(server, err) : undefined);
    return server;
  };

  const refuse = (name: string) => () => {
    throw NOT_HERE(name);
  };
  Object.defineProperties(server, {
    tlsServer: { value: tlsServer, enumerable: true },
    listening: { get: () => tlsServer.listening, configurable: true },
    maxConnections: { get: () => options.maxConnections ?? 0, configurable: true },
    listen: { value: listen, configurable: true, writable: true },
    close: { value: close, configurable: true, writable: true },
    address: { value: () => tlsServer.address(), configurable: true, writable: true },
    closeAllConnections: { value: () => tlsServer.closeAllConnections(), configurable: true, writable: true },
    ref: { value: () => (tlsServer.ref(), server), configurable: true, writable: true },
    unref: { value: () => (tlsServer.unref(), server), configurable: true, writable: true },
    getConnections: {
      value: (cb: (err: Error | null, n: number) => void) => (tlsServer.getConnections(cb), server),
      configurable: true,
      writable: true,
    },
    setSecureContext: { value: refuse('setSecureContext'), configurable: true, writable: true },
    addContext: {
      value: (hostname: string, context: SecureContext | SecureContextOptions) =>
        tlsServer.addContext(hostname, context),
      configurable: true,
      writable: true,
    },
    getTicketKeys: {
      value: () => tlsServer.getTicketKeys() as ReturnType<HttpsServer['getTicketKeys']>,
      configurable: true,
      writable: true,
    },
    setTicketKeys: { value: (keys: Buffer) => tlsServer.setTicketKeys(keys), configurable: true, writable: true },
  });
  // keylog and OCSPRequest are the native server's, asked only while someone listens: forward a listener
  // there while this server has one.
  const forwarders = {
    keylog: (line: Buffer, conn: TLSConnection) => server.emit('keylog', line, conn),
    OCSPRequest: (...args: unknown[]) => server.emit('OCSPRequest', ...args),
  } as const;
  server.on('newListener', (name: string | symbol) => {
    if ((name === 'keylog' || name === 'OCSPRequest') && server.listenerCount(name) === 0)
      tlsServer.on(name, forwarders[name] as never);
  });
  server.on('removeListener', (name: string | symbol) => {
    if ((name === 'keylog' || name === 'OCSPRequest') && server.listenerCount(name) === 0)
      tlsServer.off(name, forwarders[name] as never);
  });
  // As net.Server's: `await using server = ...` closes it.
  const asyncDispose = (Symbol as { asyncDispose?: symbol }).asyncDispose;
  if (asyncDispose) {
    Object.defineProperty(server, asyncDispose, {
      value: () => new Promise<void>((resolve) => (server.listening ? close(() => resolve()) : resolve())),
      configurable: true,
      writable: true,
    });
  }
  return server as HttpsServer;
}

/** What this file uses of node's server beyond its public type. */
interface NodeInternals {
  /** net.Server's count of open connections; while above 0, net.Server#close() does not emit 'close'. */
  _connections: number;
  close(this: unknown): unknown;
}

/**
 * Node's HTTP/2 session reads `encrypted` and `alpnProtocol` from the socket it is given, but a Duplex
 * that is not a node TCP/TLS handle is first wrapped in a plain net.Socket (internal JSStreamSocket), so
 * it would report `encrypted: false` and ALPN `'h2c'`, and `req.socket` (that wrapper) would lack the TLS
 * surface and the peer's address. Put them right, before any listener of the user's sees the session.
 */
function presentTls(session: Http2Session, conn: TLSConnection): void {
  Object.defineProperties(session, {
    encrypted: { value: true, configurable: true },
    alpnProtocol: { value: conn.alpnProtocol, configurable: true },
  });
  // session.socket is a proxy that binds methods to the wrapper; an EventEmitter method returning
  // `this` yields the wrapper itself.
  const proxy = session.socket;
  const wrapper = proxy.setMaxListeners(proxy.getMaxListeners()) as object;
  const source = conn as unknown as Record<string, unknown>;
  for (const name of SOCKET_SURFACE) {
    if (!(name in conn)) continue;
    Object.defineProperty(wrapper, name, {
      configurable: true,
      get: () => {
        const value = source[name];
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(conn) : value;
      },
    });
  }
}
