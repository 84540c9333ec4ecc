// Errors with stable codes. OpenSSL failures keep OpenSSL's own reason string.

/** Codes carried by {@link TLSError}. */
export type TLSErrorCode =
  | 'ERR_OSC_BAD_CERT'
  | 'ERR_OSC_BAD_KEY'
  | 'ERR_OSC_KEY_MISMATCH'
  | 'ERR_OSC_BAD_CA'
  | 'ERR_OSC_BAD_OPTION'
  | 'ERR_OSC_CERTGEN'
  | 'ERR_OSC_OPENSSL'
  | 'ERR_OSC_HANDSHAKE'
  | 'ERR_OSC_HANDSHAKE_TIMEOUT'
  | 'ERR_OSC_TLS'
  | 'ERR_OSC_CLOSED'
  | 'ERR_OSC_SHARED_RELEASED'
  | 'ERR_OSC_SHARED_FOREIGN';

/** A failure reported by OpenSSL (or by the TLS layer around it). `reason` is OpenSSL's own text. */
export class TLSError extends Error {
  override name = 'TLSError';
  /** Stable, machine-readable code. */
  readonly code: TLSErrorCode;
  /** OpenSSL's reason string, e.g. `"key values mismatch"` or `"wrong version number"`. */
  readonly reason: string;

  constructor(code: TLSErrorCode, reason: string, message?: string) {
    super(message ?? reason);
    this.code = code;
    this.reason = reason;
  }
}

/** Re-throws a native error (plain Error with `code`) as a {@link TLSError}. */
export function rethrowNative(err: unknown, context: string): never {
  // Not `instanceof Error`: the addon creates its errors in the main realm, which differs from the
  // caller's in a vm context (jest runs tests in one), and such errors would escape unconverted.
  if (typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string') {
    const { code, message } = err as { code: string; message?: unknown };
    if (code.startsWith('ERR_OSC_')) {
      const reason = String(message);
      throw new TLSError(code as TLSErrorCode, reason, `${context}: ${reason}`);
    }
  }
  throw err;
}

/** A Node-style system error (`code` like `EADDRINUSE`), as node:net reports them. */
export class SystemError extends Error {
  override name = 'SystemError';
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;

  constructor(code: string, errno: number, syscall: string, message: string) {
    super(`${syscall} ${code}: ${message}`);
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
  }
}
