// The one place that loads the addon (prebuilt binary if one fits, else build/Release).
import path from 'node:path';

import { assertSupportedRuntime } from './runtime';

/** Raw session facts as the native layer reports them. */
export interface NativeSessionInfo {
  id: Buffer;
  reused: boolean;
  protocol: string;
  cipher: string;
  alpn: string | null;
  servername: string | null;
  peerCertificate: Buffer | null;
  verifyError: string | null;
  /** IANA cipher name. */
  cipherStandardName: string;
  /** The X509_V_ERR_ name of a failed verification (node's authorizationError codes). */
  verifyCode: string | null;
  /** The server asked for a client certificate. */
  certRequested: boolean;
}

/**
 * [events, ciphertext, plaintext, error, (resolveLookup's flag), key log lines] — everything one engine
 * call produced. The key log lines come only while the engine collects them (setKeylog).
 */
export type EngineResult = [number, Buffer | undefined, Buffer | undefined, string | undefined, unknown?, Buffer[]?];

/**
 * [ending, clean, code, reason] — the engine's verdict on a finished connection (native/engine.h
 * Outcome): `ending` indexes {@link ENDINGS}; `code` and `reason` are set for a failure.
 */
export type NativeOutcome = [number, boolean, string | undefined, string | undefined];

export interface NativeSecureContext {
  setSessionIdContext(ctx: Buffer): void;
  getSessionIdContext(): Buffer;
  setCacheSize(n: number): void;
  setTimeout(seconds: number): void;
  flush(expiredOnly: boolean): void;
  remove(id: Buffer): boolean;
  stats(): Record<string, number>;
  setEventHandler(fn: ((batch: Array<[number, Buffer]>) => void) | null): void;
  /** Registers the context for other threads; returns its id. */
  share(): string;
  /** Turns the second tier's lookups on (ClientHello suspended on an internal cache miss). */
  setStoreEnabled(on: boolean): void;
  /** Every live cached session as [id, der]; null when the cache is not indexed (tickets on, no store). */
  exportSessions(): Array<[Buffer, Buffer]> | null;
  /** Adds a session (DER) to the cache if it fits this context: whether it did. */
  importSession(der: Buffer): boolean;
  getTicketKeys(): Buffer;
  setTicketKeys(keys: Buffer): void;
  /** SNI: the context for host names matching `pattern` (the last added match wins). */
  addContext(pattern: string, context: NativeSecureContext): void;
  /** The DER OCSP response stapled when a client asks (null: none). */
  setOcspResponse(der: Buffer | null): void;
  getOcspResponse(): Buffer | null;
}

/** One engine (native/engine_binding.cc), driven by the Duplex transport of wrap(). */
export interface NativeEngine {
  feed(ciphertext: Buffer): EngineResult;
  write(chunks: Buffer[]): EngineResult;
  shutdown(): EngineResult;
  setShutdown(flags: number): void;
  getShutdown(): number;
  /** The transport ended (a {@link TransportEnd}, with the socket error's code); returns the verdict. */
  finish(how: number, sysCode?: string): NativeOutcome;
  info(): NativeSessionInfo;
  /** The session id the suspended handshake offers (after a Lookup event). */
  lookupId(): Buffer;
  /** The store's answer (DER, or null): the result of going on, with [4] = whether the session was taken. */
  resolveLookup(der: Buffer | null): EngineResult;
  /** The ClientHello's host name (after a Servername event). */
  servername(): string;
  /** SNICallback's answer: the context to use (null: the listening one), or an error's reason. */
  resolveServername(context: NativeSecureContext | null, error?: string): EngineResult;
  /** The certificate and its issuer (DER) an OCSP response is asked for (after an Ocsp event). */
  ocspRequest(): [Buffer, Buffer | null];
  /** OCSPRequest's answer: the DER response (null: none), or an error's reason. */
  resolveOcsp(response: Buffer | null, error?: string): EngineResult;
  /** What to ask JS from now on ({@link Ask} bits). */
  setAsk(bits: number): void;
  takeStoreWork(): NativeStoreWork;
  live: NativeLive;
  /** Collect this connection's NSS key log lines (returned in EngineResult[5]). */
  setKeylog(on: boolean): void;
}

/** Live facts of a connection (native/engine_binding.cc LiveFact), on both JS handles. */
export interface NativeLive {
  (what: 'session' | 'certificate' | 'finished' | 'peerFinished'): Buffer | undefined;
  (what: 'sigalgs'): string[];
  (what: 'keying', length: number, label: string, context?: Buffer): Buffer;
}

/** [[id, der, ttlSeconds]...], [id...]: sessions to write to the store, ids to delete from it. */
export type NativeStoreWork = [Array<[Buffer, Buffer, number]>, Buffer[]];

export interface Binding {
  SecureContext: {
    new (options: object): NativeSecureContext;
    /** The context shared under `id`, or null once every holder released it. */
    fromShared(id: string): NativeSecureContext | null;
  };
  Engine: new (context: NativeSecureContext, policy: number, ask?: number) => NativeEngine;
  generateCertificate(options: object): { cert: string; key: string };
  opensslVersion: string;
  opensslVersionNumber: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  [key: string]: any;
}

// On a runtime without Node's OpenSSL 3 (Electron, a Node built without OpenSSL, one older than engines.node)
// the addon would fail to load with a missing-symbol error: say why in one sentence instead.
assertSupportedRuntime();

// OSC_ADDON_PATH points at another build of the same sources (the sanitizer build, scripts/build-asan.js).
const binding: Binding = process.env.OSC_ADDON_PATH
  ? // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(process.env.OSC_ADDON_PATH)
  : // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('node-gyp-build')(path.join(__dirname, '..'));
export default binding;

/** Bits of EngineResult[0] (native/engine.h). */
export const EngineEvent = {
  HandshakeDone: 1,
  Plaintext: 2,
  PeerClosed: 4,
  Fatal: 8,
  Ciphertext: 16,
  Lookup: 32,
  StoreWork: 64,
  Servername: 128,
  Ocsp: 256,
} as const;

/** What a transport asks JavaScript during a handshake (native/engine.h EngineAsk). */
export const Ask = { Servername: 1, Ocsp: 2 } as const;

/** What a transport saw of its own end (native/engine.h TransportEnd). */
export const TransportEnd = { Eof: 0, Error: 1, Timeout: 2, Local: 3 } as const;

/** native/engine.h Ending, by value. */
export const ENDINGS = ['close_notify', 'eof', 'reset', 'error', 'local'] as const;
