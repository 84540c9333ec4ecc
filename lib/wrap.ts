// The Duplex transport: runs the engine over any Node Duplex (a net.Socket from net.createServer, a
// pipe, a test stream). One native call per incoming chunk; it returns every output at once.
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

import binding, {
  Ask,
  EngineEvent,
  EngineResult,
  NativeEngine,
  NativeLive,
  NativeOutcome,
  TransportEnd,
} from './binding';
import { ShutdownFlags, TLSConnection, Transport, UncleanClosePolicy, policyCode } from './connection';
import { SecureContext, SecureContextOptions, contextFrom } from './context';
import { TLSError, rethrowNative } from './errors';
import { SNICallback, applyStoreWork, askOCSP, askSNI } from './server';
import { booleanOption } from './options';

/** Options of {@link wrap}. */
export interface WrapOptions extends SecureContextOptions {
  /** The context (certificate, cache) to use; built from the other options when absent. */
  context?: SecureContext;
  /** Session of a peer that disconnects without close_notify: `'keep'` it cached (default) or `'drop'` it. */
  uncleanClose?: UncleanClosePolicy;
  /**
   * Set TCP_NODELAY when `socket` is a net.Socket. Default `true`: each TLS flight is one write, and
   * Nagle's algorithm would hold back the TLS 1.3 tickets that follow the handshake until the client's
   * delayed ACK (about 40 ms per connection).
   */
  noDelay?: boolean;
  /**
   * node's `SNICallback(servername, callback)` (see {@link ServerOptions.SNICallback}); without it, names
   * resolve natively through the context's `contexts` / `addContext()`. (OCSP: listen for `OCSPRequest`
   * on the returned connection before its handshake starts.)
   */
  SNICallback?: SNICallback;
}

const WRAP_ONLY_OPTIONS = ['context', 'uncleanClose', 'noDelay', 'SNICallback'] as const;

function notBytes(chunk: unknown): Error {
  const what = typeof chunk === 'string' ? 'a string (was setEncoding() called?)' : `a ${typeof chunk}`;
  return Object.assign(new TypeError(`wrap(): the socket emitted ${what}; TLS needs the raw bytes as Buffers`), {
    code: 'ERR_INVALID_ARG_TYPE',
  });
}

/** Runs the engine over a Duplex of ciphertext. How the connection ended is the engine's to decide. */
class DuplexTransport implements Transport {
  constructor(
    private readonly conn: TLSConnection,
    private readonly socket: Duplex,
    private readonly engine: NativeEngine,
    private readonly context: SecureContext,
    private readonly sni: SNICallback | undefined,
  ) {
    socket.on('data', (chunk: unknown) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err: NodeJS.ErrnoException) => this.ended(TransportEnd.Error, err.code ?? 'EIO', err));
    socket.on('close', () => this.ended(TransportEnd.Local));
  }

  get remoteAddress(): string | undefined {
    return (this.socket as Socket).remoteAddress;
  }
  get remotePort(): number | undefined {
    return (this.socket as Socket).remotePort;
  }
  get localAddress(): string | undefined {
    return (this.socket as Socket).localAddress;
  }
  get localPort(): number | undefined {
    return (this.socket as Socket).localPort;
  }
  setNoDelay(noDelay: boolean): void {
    (this.socket as Socket).setNoDelay?.(noDelay);
  }
  setKeepAlive(enable: boolean, initialDelay: number): void {
    (this.socket as Socket).setKeepAlive?.(enable, initialDelay);
  }

  write(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    const [events, wire, , error] = this.engine.write(chunks);
    if (events & EngineEvent.Fatal) return cb(new TLSError('ERR_OSC_TLS', error ?? 'write failed'));
    if (wire && this.socket.writable) this.socket.write(wire, cb);
    else cb();
  }

  end(cb: () => void): void {
    const [, wire] = this.engine.shutdown();
    if (this.socket.writable) this.socket.end(wire ?? Buffer.alloc(0), cb);
    else cb();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): NativeOutcome {
    const outcome = this.engine.finish(TransportEnd.Local);
    this.socket.destroy();
    return outcome;
  }

  setShutdown(flags: number): void {
    this.engine.setShutdown(flags);
  }

  get live(): NativeLive {
    return this.engine.live.bind(this.engine) as NativeLive;
  }

  getShutdown(): number {
    return this.engine.getShutdown();
  }

  private onData(chunk: unknown): void {
    // Never throw out of the socket's 'data' handler: a bad chunk fails this connection only.
    if (!Buffer.isBuffer(chunk)) {
      const outcome = this.engine.finish(TransportEnd.Error, 'ERR_INVALID_ARG_TYPE');
      this.socket.destroy();
      return this.conn._onClose(outcome, notBytes(chunk));
    }
    this.apply(this.engine.feed(chunk));
  }

  private apply([events, wire, plain, , , keylog]: EngineResult): void {
    if (wire && this.socket.writable) this.socket.write(wire);
    // Key log lines (only while someone listens), before 'secure' as in node:tls.
    if (keylog) for (const line of keylog) this.conn.emit('keylog', line);
    if (events & EngineEvent.StoreWork) {
      const [writes, deletes] = this.engine.takeStoreWork();
      applyStoreWork(this.context.tier, writes, deletes);
    }
    if (events & EngineEvent.Lookup) this.lookup();
    if (events & EngineEvent.Servername) this.servername();
    if (events & EngineEvent.Ocsp) this.ocsp();
    if (events & EngineEvent.HandshakeDone) this.conn._onSecure(() => this.engine.info());
    if (plain && !this.conn._onData(plain)) this.socket.pause();
    // close_notify: the readable side ends; our answer follows from end() (TLSConnection ends its
    // writable side after the readable one, once pending writes went out).
    if (events & EngineEvent.PeerClosed) this.conn._onEnd();
    if (events & EngineEvent.Fatal) {
      const outcome = this.engine.finish(TransportEnd.Error);
      this.socket.end(); // let the alert go out, then close
      this.conn._onClose(outcome);
    }
  }

  // The handshake waits for the store; more input is buffered meanwhile.
  private lookup(): void {
    const tier = this.context.tier;
    const answer = tier ? tier.lookup(this.engine.lookupId()) : Promise.resolve(null);
    void answer.then((der) => {
      if (this.conn.closeInfo !== null) return; // gone meanwhile
      const result = this.engine.resolveLookup(der);
      if (der && tier) tier.taken(result[4] === true);
      this.apply(result);
    });
  }

  // The handshake waits for the SNICallback's context.
  private servername(): void {
    const answer = (ctx: SecureContext | null, error?: string): void => {
      if (this.conn.closeInfo !== null) return;
      this.apply(this.engine.resolveServername(ctx?.native ?? null, error));
    };
    if (!this.sni) return answer(null);
    askSNI(this.sni, this.conn, this.engine.servername(), answer);
  }

  // The handshake waits for the connection's OCSPRequest listener.
  private ocsp(): void {
    const [cert, issuer] = this.engine.ocspRequest();
    askOCSP(this.conn, cert, issuer, (response, error) => {
      if (this.conn.closeInfo !== null) return;
      this.apply(this.engine.resolveOcsp(response, error));
    });
  }

  private onEnd(): void {
    // The peer's FIN after its close_notify: the connection closes once our answer went out.
    if (this.engine.getShutdown() & ShutdownFlags.RECEIVED) return;
    this.ended(TransportEnd.Eof);
  }

  private ended(how: number, code?: string, error?: Error): void {
    const outcome = this.engine.finish(how, code);
    // The socket's own error object says more than its code, when the engine made that code the verdict.
    this.conn._onClose(outcome, error && outcome[2] === code ? error : undefined);
  }
}

/**
 * Runs a server-side TLS connection over any Duplex that carries ciphertext (typically a `net.Socket`
 * accepted by `net.createServer`). The returned {@link TLSConnection} is the plaintext Duplex.
 *
 * @example
 * const context = new SecureContext({ cert, key });
 * net.createServer((socket) => {
 *   const tls = wrap(socket, { context });
 *   tls.on('secure', (s) => console.log(s.reused ? 'resumed' : 'new', s.id));
 *   tls.on('keylog', (line) => keylogFile.write(line)); // NSS key log lines, as node:tls's 'keylog'
 *   tls.pipe(tls); // echo
 * }).listen(8443);
 */
export function wrap(socket: Duplex, options: WrapOptions): TLSConnection {
  const s = socket as Partial<Duplex> | null;
  if (typeof s !== 'object' || s === null || typeof s.on !== 'function' || typeof s.write !== 'function') {
    throw new TypeError('wrap() needs a Duplex stream that carries the ciphertext');
  }
  if (s.readableObjectMode || s.readableEncoding) {
    throw new TypeError(
      `wrap() needs a Duplex that emits Buffers; this one emits ${s.readableObjectMode ? 'objects' : `${s.readableEncoding} strings`}`,
    );
  }
  if (typeof options !== 'object' || options === null) throw new TypeError('wrap() options must be an object');
  const context = contextFrom(options, WRAP_ONLY_OPTIONS, 'wrap');
  const policy = policyCode(options.uncleanClose);
  const noDelay = booleanOption(options.noDelay, true, 'noDelay');
  const sni = options.SNICallback;
  if (sni !== undefined && typeof sni !== 'function') throw new TypeError('SNICallback must be a function');
  let engine: NativeEngine;
  try {
    engine = new binding.Engine(context.native, policy, sni ? Ask.Servername : 0);
  } catch (err) {
    rethrowNative(err, 'wrap');
  }
  const conn = new TLSConnection();
  // 'keylog' and OCSPRequest cost nothing until someone listens: only then does the engine collect the
  // lines, or suspend the handshake to ask.
  const ask = (ocsp: boolean) => engine.setAsk((sni ? Ask.Servername : 0) | (ocsp ? Ask.Ocsp : 0));
  conn.on('newListener', (name) => {
    if (name === 'keylog') engine.setKeylog(true);
    if (name === 'OCSPRequest') ask(true);
  });
  conn.on('removeListener', (name) => {
    if (name === 'keylog' && conn.listenerCount('keylog') === 0) engine.setKeylog(false);
    if (name === 'OCSPRequest') ask(conn.listenerCount('OCSPRequest') > 0);
  });
  const transport = new DuplexTransport(conn, socket, engine, context, sni);
  if (noDelay) transport.setNoDelay(true);
  conn.attach(transport);
  return conn;
}
