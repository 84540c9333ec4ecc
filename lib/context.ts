// SecureContext: one OpenSSL SSL_CTX — certificates, protocol options and the internal session cache.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

import binding, { NativeSecureContext } from './binding';
import { TLSError, rethrowNative } from './errors';
import { EmitterEvents, TypedEventEmitter } from './events';
import { booleanOption, checkKnownKeys, integerOption, stringOption, withoutKeys } from './options';
import { SessionSealer, SessionStore, SessionTier, StoreOptions, StoreStats, StoreTier } from './store';

/** Protocol versions accepted by `minVersion` / `maxVersion`. */
export type TLSVersion = 'TLSv1.2' | 'TLSv1.3';

const VERSIONS: Record<TLSVersion, number> = { 'TLSv1.2': 0x0303, 'TLSv1.3': 0x0304 };

/** PEM text, as a string or a Buffer. */
export type PEM = string | Buffer;

/** A private key with its own passphrase, as node:tls takes them in a `key` array. */
export interface KeyWithPassphrase {
  pem: PEM;
  passphrase?: string;
}

/** Options of {@link SecureContext}. Every cache setting maps onto OpenSSL's internal cache. */
export interface SecureContextOptions {
  /**
   * Certificate in PEM, leaf first, followed by its chain; or an array of them with keys of different
   * types (e.g. one RSA and one ECDSA certificate), as node:tls takes them: OpenSSL presents the one
   * the client's signature algorithms and cipher suites allow, preferring the first that fits.
   */
  cert?: PEM | PEM[];
  /** Path of a PEM file holding the certificate chain (instead of `cert`). */
  certFile?: string;
  /**
   * Private key in PEM (any type OpenSSL reads: RSA, EC, Ed25519, PKCS#8, encrypted); with several
   * certificates, an array of one key per certificate, in any order (each goes to the certificate of
   * its type), each a PEM or `{ pem, passphrase }`.
   */
  key?: PEM | Array<PEM | KeyWithPassphrase>;
  /** Path of a PEM file holding the private key (instead of `key`). */
  keyFile?: string;
  /** Passphrase of an encrypted key. */
  passphrase?: string;
  /** CA certificates (PEM) that client certificates are verified against; also sent as acceptable CA names. */
  ca?: PEM | PEM[];
  /** Path of a PEM file of CA certificates (instead of `ca`). */
  caFile?: string;
  /** Ask clients for a certificate. Default `false`. */
  requestCert?: boolean;
  /** With `requestCert`: fail the handshake when the client has no valid certificate. Default `true`. */
  rejectUnauthorized?: boolean;
  /** Lowest protocol version. Default `'TLSv1.2'`. */
  minVersion?: TLSVersion;
  /** Highest protocol version. Default `'TLSv1.3'`. */
  maxVersion?: TLSVersion;
  /** TLS 1.2 cipher list (OpenSSL syntax). Default: OpenSSL's. */
  ciphers?: string;
  /** TLS 1.3 cipher suites (OpenSSL syntax). Default: OpenSSL's. */
  ciphersuites?: string;
  /**
   * ALPN protocols the server accepts, in order of preference: names, or the wire format (length-prefixed
   * names) in a Buffer/Uint8Array, as node:tls takes them. A client offering only others is refused; a
   * client offering none is accepted without ALPN.
   */
  ALPNProtocols?: string[] | Uint8Array;
  /** Server-side session cache on (`true`, default) or off. */
  sessionCache?: boolean;
  /** Maximum number of cached sessions (`SSL_CTX_sess_set_cache_size`). Default 20480; 0 = unbounded. */
  sessionCacheSize?: number;
  /** Session lifetime in seconds (`SSL_CTX_set_timeout`). Default 300, as nginx, HAProxy and Apache. */
  sessionTimeout?: number;
  /**
   * Also issue stateless session tickets. Default `false`: TLS 1.2 resumes by session id and TLS 1.3
   * resumes statefully, both from the internal cache.
   */
  tickets?: boolean;
  /**
   * With `tickets`: the 48-byte session ticket key, in node:tls's layout (16 bytes key name, 16 bytes
   * HMAC-SHA256 key, 16 bytes AES-128-CBC key). Servers given the same key resume each other's
   * tickets (node:tls servers too, with the same `sessionIdContext`). Default: random per context.
   * See {@link SecureContext.setTicketKeys} for rotation.
   */
  ticketKeys?: Buffer;
  /**
   * TLS 1.3 tickets sent per full handshake (`SSL_CTX_set_num_tickets`). Default 2. Without `tickets`,
   * each one is a separate entry of the internal cache, so a TLS 1.3 client costs this many entries.
   */
  numTickets?: number;
  /**
   * Session id context (`SSL_CTX_set_session_id_context`, at most 32 bytes). Default: a SHA-256 over
   * `serviceName`, the certificate, the verify mode and the trusted CA names.
   */
  sessionIdContext?: string | Buffer;
  /** Name mixed into the default session id context; servers that must not share sessions differ here. */
  serviceName?: string;
  /**
   * A second tier behind the internal cache, shared by processes and machines (e.g. {@link RedisStore}).
   * A session the internal cache does not hold is looked up there while the handshake waits (at most
   * `storeTimeout`); new sessions are written behind. Needs `storeKey`; tickets must stay off.
   */
  store?: SessionStore;
  /** 32-byte key(s) that seal what goes to the store (AES-256-GCM): the first encrypts, all decrypt. */
  storeKey?: Buffer | Buffer[];
  /** Milliseconds a handshake waits for the store before going on with a full handshake. Default 50. */
  storeTimeout?: number;
  /** Consecutive store failures that stop the lookups for `storeRetryAfter` ms (then one probe). Default 5. */
  storeFailures?: number;
  /** Milliseconds the lookups pause after `storeFailures` failures. Default 5000. */
  storeRetryAfter?: number;
  /**
   * SNI: a context per host name, as `server.addContext()` adds them, in order (a later match wins).
   * Keys are host names or node's wildcard patterns (`*` matches any run of characters without a dot:
   * `'*.example.com'`); values are SecureContexts or their options. Resolved natively, with no
   * JavaScript in the handshake; a client naming no listed host gets this context.
   */
  contexts?: Record<string, SecureContext | SecureContextOptions>;
  /**
   * OCSP stapling: a DER OCSP response (e.g. from `openssl ocsp -respout`) stapled for every client that
   * asks (status_request). Replace it before it expires with the `ocspResponse` property.
   */
  ocspResponse?: Buffer | Uint8Array;
}

/** Counters of the internal cache, from OpenSSL's `SSL_CTX_sess_*`. */
export interface CacheStats {
  /** Sessions in the cache now. */
  number: number;
  /** Handshakes started. */
  accept: number;
  /** Handshakes completed. */
  acceptGood: number;
  /** Renegotiations started (always 0: renegotiation is disabled). */
  acceptRenegotiate: number;
  /** Sessions resumed from the cache. */
  hits: number;
  /** Resumption attempts whose session was not in the cache. */
  misses: number;
  /** Resumption attempts whose session had expired. */
  timeouts: number;
  /** Sessions evicted because the cache was full. */
  cacheFull: number;
  /** Sessions found through an external-cache callback (always 0 here). */
  callbackHits: number;
  /** The configured maximum. */
  cacheSize: number;
  /** The configured lifetime in seconds. */
  timeout: number;
  /** The second tier's counters, when the context has a store. */
  store?: StoreStats;
}

/**
 * A SecureContext as another thread of this process can open it ({@link SecureContext.fromShared}):
 * plain data, so it goes through `workerData` and `postMessage`.
 */
export interface SharedContextHandle {
  readonly type: 'openssl-session-cache/shared-context';
  /** The process the context lives in. */
  readonly pid: number;
  readonly id: string;
}

const SHARED_TYPE = 'openssl-session-cache/shared-context';
// Constructor option (a symbol, so no user option can collide) that wraps an existing native context.
const NATIVE = Symbol('native');

/** Events of {@link SecureContext}; every EventEmitter method of the class reads this map. */
export interface SecureContextEvents extends EmitterEvents {
  /** The store failed (a lookup, a write, a delete), at most once a second; the handshakes go on. */
  storeError: [error: Error];
  /** A session entered the internal cache (after a full handshake; per ticket in TLS 1.3). */
  sessionAdded: [id: string];
  /** A session left the cache: expiry, eviction, `remove()`, `flush()` or a failed connection. */
  sessionRemoved: [id: string];
}

const MAX_INT = 2 ** 31 - 1;

const DEFAULTS = {
  requestCert: false,
  rejectUnauthorized: true,
  minVersion: 'TLSv1.2' as TLSVersion,
  maxVersion: 'TLSv1.3' as TLSVersion,
  sessionCache: true,
  sessionCacheSize: 20480,
  sessionTimeout: 300,
  tickets: false,
  numTickets: 2,
  serviceName: 'openssl-session-cache',
};

const CONTEXT_OPTIONS: ReadonlySet<string> = new Set([
  'cert',
  'certFile',
  'key',
  'keyFile',
  'passphrase',
  'ca',
  'caFile',
  'requestCert',
  'rejectUnauthorized',
  'minVersion',
  'maxVersion',
  'ciphers',
  'ciphersuites',
  'ALPNProtocols',
  'sessionCache',
  'sessionCacheSize',
  'sessionTimeout',
  'tickets',
  'ticketKeys',
  'numTickets',
  'sessionIdContext',
  'serviceName',
  'store',
  'storeKey',
  'storeTimeout',
  'storeFailures',
  'storeRetryAfter',
  'contexts',
  'ocspResponse',
]);

const EXPORT_MAGIC = Buffer.from('OSC\x01', 'latin1');

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function storeKeys(value: unknown): Buffer[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || !list.every((k) => Buffer.isBuffer(k) && k.length === 32)) {
    throw new TypeError('storeKey must be a 32-byte Buffer, or a non-empty array of them');
  }
  return list as Buffer[];
}

function isStore(value: unknown): value is SessionStore {
  const s = value as Partial<SessionStore> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.get === 'function' &&
    typeof s.set === 'function' &&
    typeof s.delete === 'function'
  );
}

function isPem(value: unknown): value is PEM {
  return typeof value === 'string' || Buffer.isBuffer(value);
}

function pem(value: unknown, file: unknown, name: string): PEM | undefined {
  if (value !== undefined && file !== undefined) throw new TypeError(`give ${name} or ${name}File, not both`);
  if (file !== undefined) {
    if (typeof file !== 'string') throw new TypeError(`${name}File must be a path string`);
    return readFileSync(file);
  }
  if (value !== undefined && !isPem(value)) throw new TypeError(`${name} must be a PEM string or Buffer`);
  return value;
}

function certList(value: unknown, file: unknown): PEM[] | undefined {
  if (!Array.isArray(value)) {
    const one = pem(value, file, 'cert');
    return one === undefined ? undefined : [one];
  }
  if (file !== undefined) throw new TypeError('give cert or certFile, not both');
  if (value.length === 0 || !value.every(isPem)) {
    throw new TypeError('cert must be a PEM string or Buffer, or a non-empty array of them');
  }
  return value as PEM[];
}

function keyList(
  value: unknown,
  file: unknown,
  passphrase: string | undefined,
): Array<[PEM, string | undefined]> | undefined {
  if (!Array.isArray(value)) {
    const one = pem(value, file, 'key');
    return one === undefined ? undefined : [[one, passphrase]];
  }
  if (file !== undefined) throw new TypeError('give key or keyFile, not both');
  if (value.length === 0) throw new TypeError('key must be a PEM string or Buffer, or a non-empty array of them');
  return value.map((k: unknown, i): [PEM, string | undefined] => {
    if (isPem(k)) return [k, passphrase];
    const o = k as Partial<KeyWithPassphrase> | null;
    if (typeof o !== 'object' || o === null || !isPem(o.pem)) {
      throw new TypeError(`key[${i}] must be a PEM string or Buffer, or { pem, passphrase }`);
    }
    for (const name of Object.keys(o)) {
      if (name !== 'pem' && name !== 'passphrase') throw new TypeError(`key[${i}]: unknown property '${name}'`);
    }
    return [o.pem, stringOption(o.passphrase, `key[${i}].passphrase`) ?? passphrase];
  });
}

/**
 * Several certificates: one per key type (OpenSSL keeps one per type and chooses by the client's
 * signature algorithms), and one matching key for each. Whatever does not parse here is left to
 * OpenSSL, which reports it as for a single certificate.
 */
function checkKeyPairs(certs: PEM[], keys: Array<[PEM, string | undefined]>): void {
  if (certs.length === 1 && keys.length === 1) return;
  if (keys.length !== certs.length) {
    throw new RangeError(
      `key: ${keys.length} key(s) for ${certs.length} certificate(s) in cert; give one key per certificate`,
    );
  }
  let parsed: X509Certificate[];
  try {
    parsed = certs.map((c) => new X509Certificate(c));
  } catch {
    return;
  }
  const types = parsed.map((c) => c.publicKey.asymmetricKeyType ?? 'unknown');
  types.forEach((type, i) => {
    if (types.indexOf(type) !== i) {
      throw new RangeError(
        `cert[${i}]: a second ${type} certificate (cert[${types.indexOf(type)}] is one); OpenSSL keeps one certificate per key type`,
      );
    }
  });
  const seen = new Set<string>();
  keys.forEach(([pemText, passphrase], i) => {
    let type: string;
    let key: ReturnType<typeof createPrivateKey>;
    try {
      key = createPrivateKey({ key: pemText, passphrase });
      type = key.asymmetricKeyType ?? 'unknown';
    } catch {
      return;
    }
    const j = (types as string[]).indexOf(type);
    if (j < 0) throw new TypeError(`key[${i}]: a ${type} key, but cert has no ${type} certificate`);
    if (seen.has(type)) throw new RangeError(`key[${i}]: a second ${type} key`);
    seen.add(type);
    if (!parsed[j].checkPrivateKey(key))
      throw new TypeError(`key[${i}] does not match cert[${j}] (the ${type} certificate)`);
  });
}

function ticketKeysOption(value: unknown, name: string): Buffer {
  if (!Buffer.isBuffer(value)) throw new TypeError(`${name} must be a Buffer of 48 bytes`);
  if (value.length !== 48) throw new RangeError(`${name} must be 48 bytes, got ${value.length}`);
  return value;
}

function caPem(value: unknown): PEM | undefined {
  if (!Array.isArray(value)) return value as PEM | undefined;
  if (!value.every(isPem)) throw new TypeError('ca must be a PEM string or Buffer, or an array of them');
  return Buffer.concat(value.map((c) => Buffer.from(c)));
}

function version(value: unknown, fallback: TLSVersion, name: string): number {
  const v = value ?? fallback;
  // Own properties only: 'constructor' or '__proto__' must not pass for a version.
  if (typeof v !== 'string' || !Object.hasOwn(VERSIONS, v)) {
    throw new RangeError(`${name} must be 'TLSv1.2' or 'TLSv1.3', got ${String(value)}`);
  }
  return VERSIONS[v as TLSVersion];
}

function alpnWire(protocols: unknown): Buffer | undefined {
  if (protocols === undefined) return undefined;
  if (protocols instanceof Uint8Array) {
    const wire = Buffer.from(protocols.buffer, protocols.byteOffset, protocols.byteLength);
    for (let i = 0; i < wire.length; i += 1 + wire[i]) {
      if (wire[i] === 0 || i + 1 + wire[i] > wire.length) {
        throw new RangeError('ALPNProtocols in wire format must be length-prefixed names of 1 to 255 bytes');
      }
    }
    return wire.length > 0 ? Buffer.from(wire) : undefined;
  }
  if (!Array.isArray(protocols) || !protocols.every((p) => typeof p === 'string')) {
    throw new TypeError('ALPNProtocols must be an array of strings, or a Buffer in wire format');
  }
  if (protocols.length === 0) return undefined;
  const parts = protocols.map((p: string) => {
    const b = Buffer.from(p, 'latin1');
    if (b.length === 0 || b.length > 255) throw new RangeError(`ALPN protocol names are 1 to 255 bytes: ${p}`);
    return Buffer.concat([Buffer.from([b.length]), b]);
  });
  return Buffer.concat(parts);
}

function ocspBytes(value: unknown): Buffer | null {
  if (value === undefined || value === null) return null;
  if (!(value instanceof Uint8Array)) throw new TypeError('ocspResponse must be a Buffer (DER) or null');
  return value.length > 0 ? Buffer.from(value) : null;
}

function contextEntries(value: unknown): Array<[string, unknown]> {
  if (value === undefined) return [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError('contexts must be an object of host name → SecureContext (or its options)');
  }
  return Object.entries(value);
}

function sidContext(value: unknown): Buffer | undefined {
  if (value === undefined) return undefined;
  if (!isPem(value)) throw new TypeError('sessionIdContext must be a string or Buffer');
  const b = Buffer.isBuffer(value) ? value : Buffer.from(value);
  if (b.length > 32) throw new RangeError(`sessionIdContext is at most 32 bytes, got ${b.length}`);
  return b;
}

/**
 * @internal The context of createServer/wrap options: `options.context`, or one built from the other
 * options (less `ownKeys`, the caller's own). Context options beside `context` are an error, not ignored.
 */
export function contextFrom(options: { context?: unknown }, ownKeys: readonly string[], where: string): SecureContext {
  if (options.context === undefined) return new SecureContext(withoutKeys(options, ownKeys) as SecureContextOptions);
  if (!(options.context instanceof SecureContext))
    throw new TypeError(`${where}: options.context must be a SecureContext`);
  const mine = new Set(ownKeys);
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined && CONTEXT_OPTIONS.has(key)) {
      throw new TypeError(
        `${where}: option '${key}' belongs to the SecureContext and cannot be combined with 'context'`,
      );
    }
  }
  checkKnownKeys(options, mine, where);
  return options.context;
}

/**
 * One OpenSSL `SSL_CTX`: certificate, protocol options and the server-side session cache. Share one
 * context between servers to share their cache.
 *
 * @example
 * const ctx = new SecureContext({ certFile: 'cert.pem', keyFile: 'key.pem', sessionTimeout: 600 });
 * ctx.on('sessionAdded', (id) => console.log('cached', id));
 * console.log(ctx.stats().hits);
 */
export class SecureContext extends TypedEventEmitter<SecureContextEvents> {
  /** @internal */
  readonly native: NativeSecureContext;

  constructor(options: SecureContextOptions) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('SecureContext options must be an object with at least cert and key');
    }
    const shared = (options as { [NATIVE]?: NativeSecureContext })[NATIVE];
    const names = shared ? [] : contextEntries(options.contexts);
    const ocsp = shared ? null : ocspBytes(options.ocspResponse);
    this.native = shared ?? SecureContext.build(options);
    if (ocsp) this.native.setOcspResponse(ocsp);
    for (const [hostname, context] of names) this.addContext(hostname, context as SecureContext);
    if (!shared && options.store !== undefined) this.storeConfig = SecureContext.storeConfig(options);
    this.startTier();
    // Session events cost a crossing per batch; switch them on only while someone listens.
    this.on('newListener', (name) => {
      if ((name === 'sessionAdded' || name === 'sessionRemoved') && !this.listening()) this.startEvents();
    });
    this.on('removeListener', () => {
      if (!this.listening()) this.native.setEventHandler(null);
    });
  }

  /**
   * A handle another thread of this process opens with {@link SecureContext.fromShared}: the same
   * `SSL_CTX`, so one session cache, the same `stats()`, `flush()` and `remove()`, and session events
   * in every thread that listens. The context lives while any thread holds it.
   */
  share(): SharedContextHandle {
    return { type: SHARED_TYPE, pid: process.pid, id: this.native.share() };
  }

  /**
   * Opens a context that another thread shared with {@link SecureContext.share}. Throws `TypeError` for
   * anything but such a handle, and a {@link TLSError} `ERR_OSC_SHARED_FOREIGN` for a handle of another
   * process or `ERR_OSC_SHARED_RELEASED` once every thread that held the context let it go.
   */
  static fromShared(handle: SharedContextHandle): SecureContext {
    const h = handle as Partial<SharedContextHandle> | null;
    if (
      typeof h !== 'object' ||
      h === null ||
      h.type !== SHARED_TYPE ||
      typeof h.id !== 'string' ||
      typeof h.pid !== 'number'
    ) {
      throw new TypeError('SecureContext.fromShared() takes the handle returned by share()');
    }
    if (h.pid !== process.pid) {
      throw new TLSError(
        'ERR_OSC_SHARED_FOREIGN',
        `the context was shared by process ${h.pid}, not this one (${process.pid})`,
      );
    }
    const native = binding.SecureContext.fromShared(h.id);
    if (native === null) {
      throw new TLSError('ERR_OSC_SHARED_RELEASED', 'the shared context was released: no thread holds it any more');
    }
    return new SecureContext({ [NATIVE]: native } as SecureContextOptions);
  }

  /** @internal The second tier the transports ask: the store, or a thread's proxy to its owner's. */
  tier: SessionTier | null = null;
  private storeConfig:
    | (Required<Pick<StoreOptions, 'store' | 'storeTimeout' | 'storeFailures' | 'storeRetryAfter'>> & {
        keys: Buffer[];
      })
    | null = null;

  private static storeConfig(o: SecureContextOptions) {
    if (!isStore(o.store)) throw new TypeError('store must have get(), set() and delete() (a SessionStore)');
    if (o.storeKey === undefined) {
      throw new TypeError(
        'a store needs storeKey: what goes to the store holds session secrets and is encrypted with it',
      );
    }
    if (o.tickets === true) throw new TypeError('store works with the stateful cache: tickets must stay off');
    return {
      store: o.store,
      keys: storeKeys(o.storeKey),
      storeTimeout: integerOption(o.storeTimeout, 50, 'storeTimeout', 60000),
      storeFailures: integerOption(o.storeFailures, 5, 'storeFailures', 1000),
      storeRetryAfter: integerOption(o.storeRetryAfter, 5000, 'storeRetryAfter', MAX_INT),
    };
  }

  // (Re)builds the tier: its keys and AAD follow the session id context in force.
  private startTier(): void {
    const c = this.storeConfig;
    if (!c) return;
    this.tier = new StoreTier(
      c.store,
      c.keys,
      this.native.getSessionIdContext(),
      c.storeTimeout,
      c.storeFailures,
      c.storeRetryAfter,
      (err) => {
        if (this.listenerCount('storeError') > 0) this.emit('storeError', err);
      },
    );
    this.native.setStoreEnabled(true);
  }

  private static build(options: SecureContextOptions): NativeSecureContext {
    const o0 = options as Record<string, unknown>;
    if (o0.store === undefined && (o0.storeKey !== undefined || o0.storeTimeout !== undefined)) {
      throw new TypeError('storeKey and storeTimeout go with store');
    }
    checkKnownKeys(options, CONTEXT_OPTIONS, 'SecureContext');
    const o = options as Record<keyof SecureContextOptions, unknown>;
    const passphrase = stringOption(o.passphrase, 'passphrase');
    const normalized = {
      certs: certList(o.cert, o.certFile),
      keys: keyList(o.key, o.keyFile, passphrase),
      ca: pem(caPem(o.ca), o.caFile, 'ca'),
      requestCert: booleanOption(o.requestCert, DEFAULTS.requestCert, 'requestCert'),
      rejectUnauthorized: booleanOption(o.rejectUnauthorized, DEFAULTS.rejectUnauthorized, 'rejectUnauthorized'),
      minVersion: version(o.minVersion, DEFAULTS.minVersion, 'minVersion'),
      maxVersion: version(o.maxVersion, DEFAULTS.maxVersion, 'maxVersion'),
      ciphers: stringOption(o.ciphers, 'ciphers'),
      ciphersuites: stringOption(o.ciphersuites, 'ciphersuites'),
      alpn: alpnWire(o.ALPNProtocols),
      sessionCache: booleanOption(o.sessionCache, DEFAULTS.sessionCache, 'sessionCache'),
      sessionCacheSize: integerOption(o.sessionCacheSize, DEFAULTS.sessionCacheSize, 'sessionCacheSize', MAX_INT),
      sessionTimeout: integerOption(o.sessionTimeout, DEFAULTS.sessionTimeout, 'sessionTimeout', MAX_INT),
      tickets: booleanOption(o.tickets, DEFAULTS.tickets, 'tickets'),
      ticketKeys: o.ticketKeys === undefined ? undefined : ticketKeysOption(o.ticketKeys, 'ticketKeys'),
      numTickets: integerOption(o.numTickets, DEFAULTS.numTickets, 'numTickets', 16),
      sessionIdContext: sidContext(o.sessionIdContext),
      serviceName: stringOption(o.serviceName, 'serviceName') ?? DEFAULTS.serviceName,
    };
    if (normalized.minVersion > normalized.maxVersion) throw new RangeError('minVersion is above maxVersion');
    if (normalized.certs === undefined || normalized.keys === undefined) {
      // Without both, every handshake would fail: say so now.
      throw new TypeError('SecureContext needs a certificate and its key: give cert and key (or certFile and keyFile)');
    }
    if (normalized.ticketKeys !== undefined && !normalized.tickets) {
      throw new TypeError('ticketKeys go with tickets: true (tickets are off by default: sessions live in the cache)');
    }
    checkKeyPairs(normalized.certs, normalized.keys);
    try {
      return new binding.SecureContext(normalized);
    } catch (err) {
      rethrowNative(err, 'SecureContext');
    }
  }

  /** Cache counters, straight from OpenSSL; `store` holds the second tier's. */
  stats(): CacheStats {
    const stats = this.native.stats() as unknown as CacheStats;
    if (this.tier instanceof StoreTier) stats.store = { ...this.tier.counters };
    return stats;
  }

  /** Removes every session from the cache (`SSL_CTX_flush_sessions(ctx, 0)`). */
  flush(): void {
    this.native.flush(false);
  }

  /** Removes the sessions that have expired by now. OpenSSL also does this every 255 handshakes. */
  flushExpired(): void {
    this.native.flush(true);
  }

  /**
   * Every live session of the cache, sealed (AES-256-GCM, bound to each id and to this context's session
   * id context) with `key` or, by default, the first `storeKey`: for a warm restart without a store
   * (`importSessions` in the next process). Needs tickets off (the default) or a store.
   */
  exportSessions(key?: Buffer): Buffer {
    const sealer = new SessionSealer(this.sealingKeys(key, 'exportSessions'), this.native.getSessionIdContext());
    const sessions = this.native.exportSessions();
    if (sessions === null) throw new TypeError('exportSessions needs tickets off (the default) or a store');
    const parts: Buffer[] = [EXPORT_MAGIC, u32(sessions.length)];
    for (const [id, der] of sessions) {
      const blob = sealer.seal(der, id);
      parts.push(Buffer.from([id.length]), id, u32(blob.length), blob);
    }
    return Buffer.concat(parts);
  }

  /**
   * Adds the sessions of an {@link exportSessions} buffer to the cache: those sealed with one of the
   * keys (`key`, or `storeKey`) for this session id context, still valid, and not cached already.
   * Returns how many were added; a malformed buffer is a `TypeError`.
   */
  importSessions(data: Buffer, key?: Buffer | Buffer[]): number {
    if (!Buffer.isBuffer(data) || data.length < 8 || !data.subarray(0, 4).equals(EXPORT_MAGIC)) {
      throw new TypeError('importSessions takes a buffer made by exportSessions()');
    }
    const sealer = new SessionSealer(this.sealingKeys(key, 'importSessions'), this.native.getSessionIdContext());
    let at = 8;
    let added = 0;
    for (let n = data.readUInt32BE(4); n > 0; n--) {
      const idLen = data[at];
      const id = data.subarray(at + 1, at + 1 + idLen);
      const blobLen = data.readUInt32BE(at + 1 + idLen);
      const blob = data.subarray(at + 5 + idLen, at + 5 + idLen + blobLen);
      if (blob.length !== blobLen) throw new TypeError('importSessions: the buffer is truncated');
      at += 5 + idLen + blobLen;
      const der = sealer.open(blob, id);
      if (der && this.native.importSession(der)) added++;
    }
    return added;
  }

  private sealingKeys(key: Buffer | Buffer[] | undefined, where: string): Buffer[] {
    if (key !== undefined) return storeKeys(key);
    if (this.storeConfig) return this.storeConfig.keys;
    throw new TypeError(`${where} needs a 32-byte key (or a context with storeKey)`);
  }

  /**
   * As node:tls `getTicketKeys()`: the 48-byte key that encrypts session tickets now (name, HMAC key,
   * AES key). Random unless set; used only with `tickets: true`.
   */
  getTicketKeys(): Buffer {
    return this.native.getTicketKeys();
  }

  /**
   * As node:tls `setTicketKeys()`, with rotation: the new 48-byte key encrypts every ticket issued from
   * now on, and the key it replaces still decrypts for one session lifetime (`sessionTimeout` seconds,
   * the longest a ticket it issued can be valid), so clients holding such a ticket resume and get a
   * new ticket under the new key. At most two replaced keys are kept: a third rotation within one
   * session lifetime retires the oldest. Setting the current key again changes nothing. Shared
   * contexts (threads) see the change at once.
   */
  setTicketKeys(keys: Buffer): void {
    this.native.setTicketKeys(ticketKeysOption(keys, 'setTicketKeys: keys'));
  }

  /**
   * SNI, as node's `server.addContext()`: clients whose server name matches `hostname` get `context` (a
   * SecureContext, or its options): its certificate, client-certificate rules (`requestCert`, `ca`),
   * protocol range and ALPN. `hostname` may hold node's wildcard `*` (any run of characters without a
   * dot: `'*.example.com'` matches `a.example.com`, not `a.b.example.com`); it is matched as given, case
   * included, and the last added match wins. Resolved natively, without JavaScript, at the start of the
   * handshake; sessions of every name live in this context's cache, each under its own name's session id
   * context, so a session never resumes under another name's rules. The session settings (cache size,
   * timeout, tickets, store) are this context's. Applies to connections that start after the call.
   */
  addContext(hostname: string, context: SecureContext | SecureContextOptions): void {
    if (typeof hostname !== 'string' || hostname === '') {
      throw Object.assign(new TypeError('addContext: a host name is required'), {
        code: 'ERR_TLS_REQUIRED_SERVER_NAME',
      });
    }
    if (typeof context !== 'object' || context === null) {
      throw new TypeError('addContext: context must be a SecureContext or its options');
    }
    const ctx = context instanceof SecureContext ? context : new SecureContext(context);
    try {
      this.native.addContext(hostname, ctx.native);
    } catch (err) {
      rethrowNative(err, 'addContext');
    }
  }

  /**
   * The DER OCSP response stapled for clients that ask for one (status_request), or null. Set a fresh
   * one before the current expires; it applies to handshakes from then on (in every thread sharing the
   * context). A server's `OCSPRequest` listener, when there is one, decides instead.
   */
  get ocspResponse(): Buffer | null {
    return this.native.getOcspResponse();
  }

  set ocspResponse(response: Buffer | null) {
    this.native.setOcspResponse(ocspBytes(response));
  }

  /** Removes one session by id (hex string or raw bytes). Returns whether it was cached. */
  remove(id: string | Buffer): boolean {
    if (typeof id !== 'string' && !Buffer.isBuffer(id))
      throw new TypeError('remove() takes a session id: hex string or Buffer');
    const raw = typeof id === 'string' ? Buffer.from(id, 'hex') : id;
    this.tier?.delete(raw);
    return this.native.remove(raw);
  }

  /**
   * Sets the session id context (`SSL_CTX_set_session_id_context`), up to 32 bytes. Sessions are only
   * resumed within the context that created them; OpenSSL refuses to resume at all when client
   * certificates are requested and no context is set. Applies to connections started after the call.
   */
  setSessionIdContext(context: string | Buffer): void {
    if (context === undefined) throw new TypeError('setSessionIdContext needs a string or Buffer');
    const b = sidContext(context);
    try {
      this.native.setSessionIdContext(b as Buffer);
    } catch (err) {
      rethrowNative(err, 'setSessionIdContext');
    }
    this.startTier();
  }

  /** The session id context in force. */
  get sessionIdContext(): Buffer {
    return this.native.getSessionIdContext();
  }

  /** Maximum number of cached sessions; 0 means unbounded. */
  get sessionCacheSize(): number {
    return this.stats().cacheSize;
  }

  set sessionCacheSize(n: number) {
    this.native.setCacheSize(integerOption(n, 0, 'sessionCacheSize', MAX_INT));
  }

  /** Lifetime in seconds of sessions created from now on. */
  get sessionTimeout(): number {
    return this.stats().timeout;
  }

  set sessionTimeout(seconds: number) {
    this.native.setTimeout(integerOption(seconds, 0, 'sessionTimeout', MAX_INT));
  }

  private listening(): boolean {
    return this.listenerCount('sessionAdded') + this.listenerCount('sessionRemoved') > 0;
  }

  private startEvents(): void {
    this.native.setEventHandler((batch) => {
      for (const [type, id] of batch) {
        this.emit(type === 0 ? 'sessionAdded' : 'sessionRemoved', id.toString('hex'));
      }
    });
  }
}
