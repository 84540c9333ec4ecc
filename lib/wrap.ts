// The Duplex transport: runs the engine over any Node Duplex (a net.Socket from net.createServer, a
// pipe, a test stream). One native call per incoming chunk; it returns every output at once.
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

import binding, { EngineEvent, EngineResult, Ending, NativeConnection } from './binding';
import { CloseEnding, ShutdownFlags, TLSConnection, Transport, UncleanClosePolicy } from './connection';
import { SecureContext, SecureContextOptions } from './context';
import { TLSError, rethrowNative } from './errors';

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
}

/** @internal */
export function policyCode(policy: UncleanClosePolicy | undefined): number {
  if (policy === undefined || policy === 'keep') return 0;
  if (policy === 'drop') return 1;
  throw new RangeError(`uncleanClose must be 'keep' or 'drop', got ${String(policy)}`);
}

const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

class DuplexTransport implements Transport {
  private finished = false;
  private handshakeDone = false;

  constructor(
    private readonly conn: TLSConnection,
    private readonly socket: Duplex,
    private readonly engine: NativeConnection,
  ) {
    socket.on('data', (chunk: Buffer) => this.apply(this.engine.feed(chunk)));
    socket.on('end', () => this.onEnd());
    socket.on('error', (err: NodeJS.ErrnoException) => this.onSocketError(err));
    socket.on('close', () => this.onSocketClose());
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
    if (this.finished) return cb();
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

  destroy(): void {
    this.finish(Ending.Local);
    this.socket.destroy();
  }

  setShutdown(flags: number): void {
    if (!this.finished) this.engine.setShutdown(flags);
  }

  getShutdown(): number {
    return this.finished ? 0 : this.engine.getShutdown();
  }

  private apply([events, wire, plain, error]: EngineResult): void {
    if (wire && this.socket.writable) this.socket.write(wire);
    if (events & EngineEvent.HandshakeDone) {
      this.handshakeDone = true;
      this.conn._onSecure(() => this.engine.info());
    }
    if (plain && !this.conn._onData(plain)) this.socket.pause();
    // close_notify: the readable side ends; our answer follows from end() (TLSConnection ends its
    // writable side after the readable one, once pending writes went out).
    if (events & EngineEvent.PeerClosed) this.conn._onEnd('close_notify');
    if (events & EngineEvent.Fatal) {
      const code = this.handshakeDone ? 'ERR_OSC_TLS' : 'ERR_OSC_HANDSHAKE';
      const err = new TLSError(code, error ?? 'TLS failure', `${this.handshakeDone ? 'TLS' : 'handshake'} failed: ${error}`);
      this.finish(Ending.Error);
      // Let the alert go out, then close.
      this.socket.end();
      this.conn._onClose('error', err);
    }
  }

  private finish(ending: number): void {
    if (this.finished) return;
    this.finished = true;
    this.engine.finish(ending);
  }

  private onEnd(): void {
    // FIN without close_notify: the engine never sees EOF (OpenSSL would call it fatal and drop the
    // session); the policy decides instead.
    if (!this.finished && !(this.engine.getShutdown() & ShutdownFlags.RECEIVED)) {
      this.finish(Ending.Eof);
      this.conn._onEnd('eof');
    }
  }

  private onSocketError(err: NodeJS.ErrnoException): void {
    if (RESET_CODES.has(err.code ?? '')) {
      this.finish(Ending.Reset);
      this.conn._onEnd('reset');
      this.conn._onClose('reset');
    } else {
      this.finish(Ending.Error);
      this.conn._onClose('error', err);
    }
  }

  private onSocketClose(): void {
    const ending: CloseEnding = this.finished ? 'local' : 'eof';
    this.finish(Ending.Local);
    this.conn._onClose(ending);
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
 *   tls.pipe(tls); // echo
 * }).listen(8443);
 */
export function wrap(socket: Duplex, options: WrapOptions = {}): TLSConnection {
  const { context = new SecureContext(options), uncleanClose } = options;
  if (!(context instanceof SecureContext)) throw new TypeError('options.context must be a SecureContext');
  const policy = policyCode(uncleanClose);
  let engine: NativeConnection;
  try {
    engine = new binding.Connection(context.native, policy);
  } catch (err) {
    rethrowNative(err, 'wrap');
  }
  const conn = new TLSConnection();
  const transport = new DuplexTransport(conn, socket, engine);
  if (options.noDelay !== false) transport.setNoDelay(true);
  conn.attach(transport);
  return conn;
}
