// TLSConnection: the plaintext side of one TLS connection as a stream.Duplex, whatever carries the
// ciphertext (a native TCP socket or any Node Duplex). Transports feed it through the Transport contract.
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { Duplex, type Readable } from 'node:stream';

import { ENDINGS, NativeLive, NativeOutcome, NativeSessionInfo } from './binding';
import { SystemError, TLSError, TLSErrorCode } from './errors';
import type { EmitterEvents, Listener } from './events';

/** What happens to the session when the peer disconnects without close_notify. */
export type UncleanClosePolicy = 'keep' | 'drop';

/** How a connection ended. */
export type CloseEnding =
  /** The peer sent close_notify (and was answered). */
  | 'close_notify'
  /** TCP FIN without close_notify. */
  | 'eof'
  /** TCP reset (ECONNRESET / EPIPE) without close_notify. */
  | 'reset'
  /** A TLS or socket error. */
  | 'error'
  /** Closed from this side: `end()`/`shutdown()` (close_notify sent) or `destroy()`. */
  | 'local';

/** Argument of the `close` event: how the connection ended. */
export interface CloseInfo {
  /** True when close_notify was exchanged (received from the peer, or sent by us on `end()`). */
  clean: boolean;
  ending: CloseEnding;
  /** The error, when `ending` is `'error'`. */
  error?: Error;
}

/** The negotiated session, fixed when the handshake completes. */
export interface SessionDetails {
  /** Session id, hex (the TLS 1.3 stateful ticket id when tickets are off). */
  id: string;
  /** True when this connection resumed a cached session (an abbreviated handshake). */
  reused: boolean;
  /** `'TLSv1.2'` or `'TLSv1.3'`. */
  protocol: string;
  /** OpenSSL cipher name. */
  cipher: string;
  /** Negotiated ALPN protocol, or null. */
  alpn: string | null;
  /** SNI host name the client asked for, or null. */
  servername: string | null;
  /** The client's certificate (verified when `rejectUnauthorized`), or null. */
  peerCertificate: X509Certificate | null;
  /** True when the client presented a certificate that verified. */
  authorized: boolean;
  /** OpenSSL's verification error for the client certificate, or null. */
  authorizationError: string | null;
}

/** SSL_set_shutdown flags; {@link TLSConnection.setShutdown} takes any combination (0 to 3). */
export const ShutdownFlags = { SENT: 1, RECEIVED: 2 } as const;

/** @internal The native code of an unclean-close policy (native/engine.h UncleanPolicy). */
export function policyCode(policy: unknown): number {
  if (policy === undefined || policy === 'keep') return 0;
  if (policy === 'drop') return 1;
  throw new RangeError(`uncleanClose must be 'keep' or 'drop', got ${String(policy)}`);
}

/** @internal The engine's verdict (native/engine.h Outcome) as the `close` event reports it. */
export function toCloseInfo([ending, clean, code, reason]: NativeOutcome): CloseInfo {
  const info: CloseInfo = { clean, ending: ENDINGS[ending] };
  // A peer that leaves (FIN, reset), even mid-handshake, is an ending; a failure is an error. (The native
  // server still counts and reports a handshake cut short as a client error.)
  if (code !== undefined && info.ending === 'error') info.error = outcomeError(code, reason ?? '');
  return info;
}

/** @internal The error of a failed connection, from the code and reason the engine gave it. */
export function outcomeError(code: string, reason: string): Error {
  if (code === 'ERR_OSC_TLS') return new TLSError(code, reason, `TLS failed: ${reason}`);
  if (code.startsWith('ERR_OSC_')) return new TLSError(code as TLSErrorCode, reason, `handshake failed: ${reason}`);
  return new SystemError(code, 0, 'read', reason);
}

/** @internal The contract between TLSConnection and whatever carries its ciphertext. */
export interface Transport {
  /** Encrypt and send; `cb` once handed to the socket. */
  write(chunks: Buffer[], cb: (err?: Error | null) => void): void;
  /** close_notify, then end the transport's writes. */
  end(cb: () => void): void;
  pause(): void;
  resume(): void;
  /** Tear down now (no close_notify); the engine's verdict, unless the transport already reported it. */
  destroy(): NativeOutcome | undefined;
  setShutdown(flags: number): void;
  getShutdown(): number;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly localAddress?: string;
  readonly localPort?: number;
  setNoDelay?(noDelay: boolean): void;
  setKeepAlive?(enable: boolean, initialDelay: number): void;
  /** Live facts of the TLS connection (getSession, keying material, Finished messages, sigalgs). */
  readonly live?: NativeLive;
}

interface QueuedWrite {
  chunks: Buffer[];
  cb: (err?: Error | null) => void;
}

/** @internal Converts the native session facts once, at handshake completion. */
export function toSessionDetails(info: NativeSessionInfo): SessionDetails {
  const peer = info.peerCertificate ? new X509Certificate(info.peerCertificate) : null;
  return {
    id: info.id.toString('hex'),
    reused: info.reused,
    protocol: info.protocol,
    cipher: info.cipher,
    alpn: info.alpn,
    servername: info.servername,
    peerCertificate: peer,
    authorized: peer !== null && info.verifyError === null,
    authorizationError: peer !== null ? info.verifyError : null,
  };
}

/**
 * One server-side TLS connection, as a `stream.Duplex` of plaintext.
 *
 * Events ({@link TLSConnectionEvents}): `secure` (handshake done, {@link SessionDetails}), `keylog` (a
 * connection of {@link wrap} only: a line of the NSS key log, as a Buffer with its newline; the native
 * server emits its lines as the server's `keylog` event), `data`, `end`, `error` ({@link TLSError} for
 * TLS failures), `timeout`, `close` with a {@link CloseInfo}, and the other events of stream.Duplex.
 */
// The interface of the same name below types the EventEmitter methods by TLSConnectionEvents.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class TLSConnection extends Duplex {
  /** Always true; lets HTTP frameworks tell this is a TLS socket. */
  readonly encrypted = true;
  private sessionInfo: (() => NativeSessionInfo | null) | null = null;
  private native: NativeSessionInfo | null = null;
  private plaintextRead = 0;
  private plaintextWritten = 0;
  private sessionDetails: SessionDetails | null = null;
  /** How the connection ended, once it has. */
  closeInfo: CloseInfo | null = null;

  private transport: Transport | null = null;
  private queued: QueuedWrite[] = [];
  private pendingFinal: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  private timeoutMs = 0;

  /**
   * Connections are made by {@link createServer} and {@link wrap}; one made by hand has no transport
   * (its writes fail with `ERR_OSC_CLOSED`).
   */
  constructor() {
    super({ allowHalfOpen: false, emitClose: false, decodeStrings: true });
  }

  /** @internal */
  attach(transport: Transport): void {
    this.transport = transport;
  }

  /** True once the handshake has completed. */
  get secure(): boolean {
    return this.sessionInfo !== null;
  }

  /** The negotiated session once the handshake has completed, else null. Built on first access. */
  get session(): SessionDetails | null {
    if (this.sessionDetails === null && this.info() !== null) {
      this.sessionDetails = toSessionDetails(this.info()!);
    }
    return this.sessionDetails;
  }

  // The native session facts, read once, when first asked for.
  private info(): NativeSessionInfo | null {
    if (this.native === null && this.sessionInfo !== null) this.native = this.sessionInfo();
    return this.native;
  }

  // ---- The reading surface of tls.TLSSocket, with node's shapes, for code written against node:tls ----

  /** As `tls.TLSSocket#authorized`: the client presented a certificate that verified. */
  get authorized(): boolean {
    return this.session?.authorized ?? false;
  }

  /**
   * As `tls.TLSSocket#authorizationError`: node's code of why the client is not authorized (e.g.
   * `'DEPTH_ZERO_SELF_SIGNED_CERT'`, or `'UNABLE_TO_GET_ISSUER_CERT'` when a certificate was requested
   * and none came), else null. (`session.authorizationError` holds OpenSSL's text instead.)
   */
  get authorizationError(): string | null {
    const info = this.info();
    if (info === null) return null;
    if (info.peerCertificate === null) return info.certRequested ? 'UNABLE_TO_GET_ISSUER_CERT' : null;
    return info.verifyCode;
  }

  /**
   * As `tls.TLSSocket#getPeerCertificate()`: the client's certificate as node's legacy object (`subject`,
   * `issuer`, `valid_from`, `fingerprint256`, `raw`, ...), or `{}` when it sent none. The issuer chain of
   * `detailed` is not kept: `issuerCertificate` is absent, as node's is for an unverified client.
   */
  getPeerCertificate(detailed?: boolean): PeerCertificate | Record<string, never> {
    void detailed;
    const x509 = this.session?.peerCertificate;
    return x509 ? (x509.toLegacyObject() as PeerCertificate) : {};
  }

  /** As `tls.TLSSocket#getPeerX509Certificate()`: the client's certificate, or undefined. */
  getPeerX509Certificate(): X509Certificate | undefined {
    return this.session?.peerCertificate ?? undefined;
  }

  /** As `tls.TLSSocket#getCipher()`: `{ name, standardName, version }`, or null before the handshake. */
  getCipher(): { name: string; standardName: string; version: string } | null {
    const info = this.info();
    return info ? { name: info.cipher, standardName: info.cipherStandardName, version: info.protocol } : null;
  }

  /** As `tls.TLSSocket#getProtocol()`: `'TLSv1.2'` or `'TLSv1.3'`, or null before the handshake. */
  getProtocol(): string | null {
    return this.info()?.protocol ?? null;
  }

  /** As `tls.TLSSocket#isSessionReused()`. */
  isSessionReused(): boolean {
    return this.info()?.reused ?? false;
  }

  /** As `tls.TLSSocket#alpnProtocol`: the negotiated protocol, or false. */
  get alpnProtocol(): string | false {
    return this.info()?.alpn ?? false;
  }

  /** As `tls.TLSSocket#servername`: the SNI host name the client asked for, or false. */
  get servername(): string | false {
    return this.info()?.servername ?? false;
  }

  /** `'IPv4'` or `'IPv6'`, as net.Socket. */
  get remoteFamily(): string | undefined {
    const a = this.remoteAddress;
    return a === undefined ? undefined : a.includes(':') ? 'IPv6' : 'IPv4';
  }

  /** The local address, as net.Socket#address(). */
  address(): { address: string; family: string; port: number } | Record<string, never> {
    const address = this.localAddress;
    const port = this.localPort;
    if (address === undefined || port === undefined) return {};
    return { address, family: address.includes(':') ? 'IPv6' : 'IPv4', port };
  }

  /** As `tls.TLSSocket#getX509Certificate()`: the certificate this server presented, or undefined once closed. */
  getX509Certificate(): X509Certificate | undefined {
    const der = this.transport?.live?.('certificate');
    return der ? new X509Certificate(der) : undefined;
  }

  /** As `tls.TLSSocket#getCertificate()`: the certificate this server presented, node's object, or `{}`. */
  getCertificate(): PeerCertificate | Record<string, never> {
    const x509 = this.getX509Certificate();
    return x509 ? (x509.toLegacyObject() as PeerCertificate) : {};
  }

  /** As `tls.TLSSocket#getSession()`: the current session (DER), or undefined once closed. */
  getSession(): Buffer | undefined {
    return this.transport?.live?.('session');
  }

  /**
   * As `tls.TLSSocket#exportKeyingMaterial()`: RFC 5705 keying material. Throws a {@link TLSError}
   * `ERR_OSC_CLOSED` before the handshake or once the connection is closed.
   */
  exportKeyingMaterial(length: number, label: string, context?: Buffer): Buffer {
    if (!Number.isInteger(length) || length < 1 || length > 2 ** 16) {
      throw new RangeError(`exportKeyingMaterial length must be an integer from 1 to 65536, got ${String(length)}`);
    }
    if (typeof label !== 'string') throw new TypeError('exportKeyingMaterial label must be a string');
    if (context !== undefined && !Buffer.isBuffer(context))
      throw new TypeError('exportKeyingMaterial context must be a Buffer');
    const live = this.transport?.live;
    if (!live || !this.secure) throw new TLSError('ERR_OSC_CLOSED', 'the connection is not established');
    try {
      return live('keying', length, label, context);
    } catch (err) {
      throw new TLSError('ERR_OSC_CLOSED', (err as Error).message);
    }
  }

  /** As `tls.TLSSocket#getFinished()`: the last Finished message sent, or undefined. */
  getFinished(): Buffer | undefined {
    return this.transport?.live?.('finished');
  }

  /** As `tls.TLSSocket#getPeerFinished()`: the last Finished message received, or undefined. */
  getPeerFinished(): Buffer | undefined {
    return this.transport?.live?.('peerFinished');
  }

  /** As `tls.TLSSocket#getSharedSigalgs()`: the signature algorithms both sides support, node's names. */
  getSharedSigalgs(): string[] {
    return this.transport?.live?.('sigalgs') ?? [];
  }

  /**
   * As `tls.TLSSocket#getEphemeralKeyInfo()` on a server socket: always null (node reports the key
   * exchange only to clients).
   */
  getEphemeralKeyInfo(): null {
    return null;
  }

  /**
   * As `tls.TLSSocket#getTLSTicket()` on a server socket: node's server sockets never hold a ticket
   * (undefined while open, null once closed); so here.
   */
  getTLSTicket(): undefined | null {
    return this.destroyed ? null : undefined;
  }

  /**
   * As `tls.TLSSocket#setMaxSendFragment()`, validated as node does (a 32-bit integer), but not applied:
   * returns false (node's answer when the size was not set); records stay OpenSSL's 16 KiB.
   */
  setMaxSendFragment(size: number): boolean {
    if (typeof size !== 'number') {
      throw Object.assign(new TypeError(`The "size" argument must be of type number. Received ${typeof size}`), {
        code: 'ERR_INVALID_ARG_TYPE',
      });
    }
    if (!Number.isInteger(size) || size < -(2 ** 31) || size > 2 ** 31 - 1) {
      throw Object.assign(new RangeError(`The value of "size" is out of range. Received ${String(size)}`), {
        code: 'ERR_OUT_OF_RANGE',
      });
    }
    return false;
  }

  /**
   * As `tls.TLSSocket#disableRenegotiation()`: a no-op, since renegotiation is always refused here
   * (`SSL_OP_NO_RENEGOTIATION`; TLS 1.3 has none).
   */
  disableRenegotiation(): void {}

  /** As net.Socket#readyState: `'open'`, `'readOnly'`, `'writeOnly'` or `'closed'`. */
  get readyState(): 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    if (this.writable) return 'writeOnly';
    return 'closed';
  }

  /** As net.Socket#pending: false while connected; true once closed (or with no transport). */
  get pending(): boolean {
    return this.transport === null || this.destroyed;
  }

  /** As net.Socket#connecting: always false (a server's connection is connected when handed out). */
  get connecting(): false {
    return false;
  }

  /** As net.Socket#timeout: the `setTimeout()` time in ms (0: none). */
  get timeout(): number {
    return this.timeoutMs;
  }

  /** As net.Socket#bufferSize (deprecated there): `writableLength`, undefined once closed. */
  get bufferSize(): number | undefined {
    return this.destroyed ? undefined : this.writableLength;
  }

  /** As net.Socket#localFamily: `'IPv4'` or `'IPv6'`, undefined once closed. */
  get localFamily(): string | undefined {
    const a = this.localAddress;
    return a === undefined || this.destroyed ? undefined : a.includes(':') ? 'IPv6' : 'IPv4';
  }

  /** Plaintext bytes received (node counts the socket's bytes; this counts what the stream delivered). */
  get bytesRead(): number {
    return this.plaintextRead;
  }

  /** Plaintext bytes handed to the TLS layer for sending. */
  get bytesWritten(): number {
    return this.plaintextWritten;
  }

  get remoteAddress(): string | undefined {
    return this.transport?.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.transport?.remotePort;
  }

  get localAddress(): string | undefined {
    return this.transport?.localAddress;
  }

  get localPort(): number | undefined {
    return this.transport?.localPort;
  }

  /** Sends close_notify after pending writes, then ends the transport. Same as `end()`; never blocks. */
  shutdown(cb?: () => void): this {
    return this.end(cb);
  }

  /**
   * `SSL_set_shutdown`: e.g. `SENT | RECEIVED` marks the connection closed properly so its session stays
   * cached. `flags` is a combination of {@link ShutdownFlags} (0 to 3). A no-op once the connection is closed.
   */
  setShutdown(flags: number): this {
    if (typeof flags !== 'number') throw new TypeError(`setShutdown flags must be a number, got ${typeof flags}`);
    if (!Number.isInteger(flags) || flags < 0 || flags > (ShutdownFlags.SENT | ShutdownFlags.RECEIVED)) {
      throw new RangeError(`setShutdown flags must combine ShutdownFlags.SENT and RECEIVED (0 to 3), got ${flags}`);
    }
    if (!this.destroyed) this.transport?.setShutdown(flags);
    return this;
  }

  /** `SSL_get_shutdown`: which close_notify alerts went out / came in (0 once closed). */
  getShutdown(): number {
    return this.destroyed ? 0 : (this.transport?.getShutdown() ?? 0);
  }

  setNoDelay(noDelay = true): this {
    this.transport?.setNoDelay?.(noDelay);
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    this.transport?.setKeepAlive?.(enable, initialDelay);
    return this;
  }

  /** Emits `timeout` after `ms` without reads or writes (0 turns it off), as net.Socket does. */
  setTimeout(ms: number, cb?: () => void): this {
    if (typeof ms !== 'number' || !(ms >= 0) || ms > 2 ** 31 - 1) {
      throw new RangeError(`setTimeout ms must be a number from 0 to ${2 ** 31 - 1}, got ${String(ms)}`);
    }
    this.timeoutMs = ms;
    if (cb && ms > 0) this.once('timeout', cb);
    else if (cb) this.removeListener('timeout', cb);
    this.touch();
    return this;
  }

  /** @internal the handshake completed; `info` reads the native snapshot, only if someone asks (null: gone untold) */
  _onSecure(info: () => NativeSessionInfo | null): void {
    this.sessionInfo = info;
    if (this.listenerCount('secure') > 0) this.emit('secure', this.session!);
    const queued = this.queued;
    this.queued = [];
    for (const w of queued) this.transport?.write(w.chunks, w.cb);
    if (this.pendingFinal) {
      const cb = this.pendingFinal;
      this.pendingFinal = null;
      this.transport?.end(cb);
    }
  }

  /** @internal plaintext arrived; false asks the transport to pause */
  _onData(chunk: Buffer): boolean {
    this.touch();
    this.plaintextRead += chunk.length;
    return this.push(chunk);
  }

  /** @internal the peer sent close_notify: it will send no more */
  _onEnd(): void {
    this.push(null);
  }

  /** @internal the transport is gone; the engine's verdict says how and why (`error`: the transport's own) */
  _onClose(outcome: NativeOutcome, error?: Error): void {
    if (this.closeInfo !== null) return;
    this.closeInfo = toCloseInfo(outcome);
    if (error) this.closeInfo.error = error;
    this.push(null);
    // A tick later, so that a flowing reader still sees 'end' (queued by push(null)) before 'close'.
    process.nextTick(() => this.destroy(this.closeInfo?.error));
  }

  /** @internal */
  override _read(): void {
    this.transport?.resume();
  }

  /** @internal */
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.write_(
      chunks.map((c) => c.chunk),
      cb,
    );
  }

  /** @internal */
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.write_([chunk], cb);
  }

  /** @internal */
  override _final(cb: (err?: Error | null) => void): void {
    if (!this.transport) return cb();
    if (this.secure) this.transport.end(() => cb());
    else this.pendingFinal = cb;
  }

  /** @internal */
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.queued) w.cb(new TLSError('ERR_OSC_CLOSED', 'connection closed before the handshake'));
    this.queued = [];
    const outcome = this.transport?.destroy();
    if (this.closeInfo === null) {
      this.closeInfo = outcome ? toCloseInfo(outcome) : { clean: false, ending: 'local' };
    }
    if (err) {
      // The application destroyed it with an error: that is how it ended.
      if (this.closeInfo.ending === 'local') this.closeInfo.ending = 'error';
      this.closeInfo.error ??= err;
    }
    cb(err);
    const info = this.closeInfo;
    process.nextTick(() => this.emit('close', info));
  }

  private write_(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    this.touch();
    for (const c of chunks) this.plaintextWritten += c.length;
    if (!this.transport) return cb(new TLSError('ERR_OSC_CLOSED', 'not attached'));
    if (this.secure) this.transport.write(chunks, cb);
    else this.queued.push({ chunks, cb });
  }

  private touch(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.timeoutMs > 0 && !this.destroyed) {
      this.timer = setTimeout(() => this.emit('timeout'), this.timeoutMs);
      this.timer.unref();
    }
  }
}

/**
 * Events of {@link TLSConnection}: its own (`secure`, `close` with a {@link CloseInfo}, `timeout`) and
 * those of `stream.Duplex`. Every EventEmitter method of the class reads this map.
 */
export interface TLSConnectionEvents extends EmitterEvents {
  /** The handshake completed (only {@link wrap}'s connections: a server's are secure when handed over). */
  secure: [session: SessionDetails];
  /**
   * A line of the NSS key log (a Buffer, newline included), for Wireshark or SSLKEYLOGFILE: only
   * {@link wrap}'s connections (the native server emits its lines as the server's `keylog`).
   */
  keylog: [line: Buffer];
  /**
   * {@link wrap}'s connections only: a client asked for OCSP stapling (see the server's `OCSPRequest`).
   * The handshake waits for `callback`.
   */
  OCSPRequest: [
    certificate: Buffer,
    issuer: Buffer | null,
    callback: (err: Error | null, response?: Buffer | null) => void,
  ];
  /** Plaintext arrived: a Buffer (typed so, as net.Socket's in @types/node 20; a string after `setEncoding()`). */
  data: [chunk: Buffer];
  /** The peer will send no more (close_notify, or its end of the transport). */
  end: [];
  /** Writes may go on after `write()` returned false. */
  drain: [];
  /** `end()` was called and everything written went to the transport. */
  finish: [];
  /** No reads or writes for the `setTimeout()` time. The connection stays open. */
  timeout: [];
  /** A TLS failure ({@link TLSError}), a transport error ({@link SystemError}), or `destroy(err)`'s error. */
  error: [error: Error];
  /** The connection is closed: how it ended (clean close_notify, EOF, reset, error, or local). */
  close: [info: CloseInfo];
  pause: [];
  resume: [];
  readable: [];
  pipe: [source: Readable];
  unpipe: [source: Readable];
}

// Typed methods of TLSConnection, from TLSConnectionEvents (a class cannot take them from a generic
// interface: stream.Duplex has methods of the same names).
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface TLSConnection {
  addListener<E extends keyof TLSConnectionEvents>(event: E, listener: Listener<TLSConnectionEvents, E>): this;
  on<E extends keyof TLSConnectionEvents>(event: E, listener: Listener<TLSConnectionEvents, E>): this;
  once<E extends keyof TLSConnectionEvents>(event: E, listener: Listener<TLSConnectionEvents, E>): this;
  prependListener<E extends keyof TLSConnectionEvents>(event: E, listener: Listener<TLSConnectionEvents, E>): this;
  prependOnceListener<E extends keyof TLSConnectionEvents>(event: E, listener: Listener<TLSConnectionEvents, E>): this;
  off<E extends keyof TLSConnectionEvents>(event: E, listener: Listener<TLSConnectionEvents, E>): this;
  removeListener<E extends keyof TLSConnectionEvents>(event: E, listener: Listener<TLSConnectionEvents, E>): this;
  removeAllListeners(event?: keyof TLSConnectionEvents): this;
  emit<E extends keyof TLSConnectionEvents>(event: E, ...args: TLSConnectionEvents[E]): boolean;
  listeners<E extends keyof TLSConnectionEvents>(event: E): Array<Listener<TLSConnectionEvents, E>>;
  rawListeners<E extends keyof TLSConnectionEvents>(event: E): Array<Listener<TLSConnectionEvents, E>>;
  listenerCount<E extends keyof TLSConnectionEvents>(event: E, listener?: Listener<TLSConnectionEvents, E>): number;
}

/**
 * A {@link TLSConnection} whose handshake has completed, as `secureConnection` listeners (and the
 * listener of {@link createServer}) receive it: `session` is set, and stays set after the close.
 */
export interface SecureTLSConnection extends TLSConnection {
  readonly secure: true;
  readonly session: SessionDetails;
}

/**
 * True when `socket` is a {@link TLSConnection}: e.g. `req.socket` of an `http.Server` fed with
 * `emit('connection', conn)`, which node types as a `net.Socket`. Narrows the type.
 */
export function isTLSConnection(socket: unknown): socket is TLSConnection {
  return socket instanceof TLSConnection;
}
