// Option checking shared by SecureContext, createServer and wrap: every option is either supported or a
// TypeError/RangeError that names it. Nothing is silently ignored.

/** Options node:tls / node:net servers take that this package does not, with what to do instead. */
const UNSUPPORTED: Record<string, string> = {
  pfx: 'give cert and key in PEM',
  secureOptions: 'use minVersion/maxVersion, ciphers and tickets',
  secureProtocol: 'use minVersion/maxVersion',
  secureContext: "give 'context' (a SecureContext of this package)",
  honorCipherOrder: 'the server cipher order always applies',
  ecdhCurve: 'OpenSSL default groups apply',
  dhparam: 'only ECDHE key exchange is offered',
  sigalgs: 'OpenSSL default signature algorithms apply',
  crl: 'not supported',
  privateKeyEngine: 'not supported',
  privateKeyIdentifier: 'not supported',
  clientCertEngine: 'not supported',
  enableTrace: 'not supported',
  pskCallback: 'not supported',
  pskIdentityHint: 'not supported',
  ALPNCallback: 'give ALPNProtocols',
  sessionTimeoutMs: 'sessionTimeout is in seconds',
  allowHalfOpen: 'a TLSConnection is never half-open',
  pauseOnConnect: 'not supported',
  keepAlive: 'call setKeepAlive() on the connection',
  keepAliveInitialDelay: 'call setKeepAlive() on the connection',
  noDelay: 'connections of the native server have TCP_NODELAY on; call setNoDelay() to change it',
  allowPartialTrustChain: 'a client certificate must chain to a root in ca',
  certificateCompression: 'not supported',
  blockList: 'filter addresses in a firewall, or accept with net.Server and adopt()',
  requestOCSP: "a client's option: the server staples when a client asks (ocspResponse, or the OCSPRequest event)",
};

/** Options that belong to another call than the one they were given to. */
const ELSEWHERE: Record<string, string> = {
  SNICallback: 'it is an option of createServer() and wrap(), not of a SecureContext',
};

/**
 * Throws a TypeError for the first key of `options` that is not in `known`, naming it (and, for a node:tls
 * option this package lacks, what to use instead).
 */
export function checkKnownKeys(options: object, known: ReadonlySet<string>, where: string): void {
  for (const [key, value] of Object.entries(options)) {
    if (known.has(key) || value === undefined) continue;
    if (Object.hasOwn(ELSEWHERE, key)) throw new TypeError(`${where}: option '${key}': ${ELSEWHERE[key]}`);
    const instead = Object.hasOwn(UNSUPPORTED, key) ? UNSUPPORTED[key] : undefined;
    if (instead !== undefined)
      throw new TypeError(`${where}: option '${key}' of node:tls is not supported (${instead})`);
    throw new TypeError(`${where}: unknown option '${key}'`);
  }
}

/** A copy of `options` without `keys`. */
export function withoutKeys<T extends object>(options: T, keys: readonly string[]): Partial<T> {
  const out = { ...options } as Record<string, unknown>;
  for (const k of keys) delete out[k];
  return out as Partial<T>;
}

/** An integer option in [0, max], or `fallback` when undefined. */
export function integerOption(value: unknown, fallback: number, name: string, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer from 0 to ${max}, got ${String(value)}`);
  }
  return value;
}

/** A boolean option, or `fallback` when undefined. */
export function booleanOption(value: unknown, fallback: boolean, name: string): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${typeof value}`);
  return value;
}

/** A string option, or undefined. */
export function stringOption(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${typeof value}`);
  return value;
}
