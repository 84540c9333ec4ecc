// Certificates generated in memory through OpenSSL, for demos and tests. Not for production trust.
import binding from './binding';
import { rethrowNative } from './errors';

/** Options of {@link generateCertificate}. */
export interface CertificateOptions {
  /** `'ec'` (P-256 by default) or `'rsa'` (2048 bits by default). Default `'ec'`. */
  keyType?: 'ec' | 'rsa';
  /** RSA modulus size. Default 2048. */
  bits?: number;
  /** EC curve name as OpenSSL knows it. Default `'prime256v1'` (P-256). */
  curve?: string;
  /** Subject common name. Default `'localhost'`. */
  commonName?: string;
  /** DNS names and IP addresses for subjectAltName. Default `['localhost', '127.0.0.1', '::1']`. */
  altNames?: string[];
  /** Validity in days. Default 30. */
  days?: number;
  /** Make a CA certificate (to sign others with `issuer`). Default false. */
  isCA?: boolean;
  /** Sign with this CA instead of self-signing. */
  issuer?: { cert: string; key: string };
}

/** A PEM certificate and its PEM private key. */
export interface GeneratedCertificate {
  cert: string;
  key: string;
}

const IP = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-f:]*:[0-9a-f:.]*)$/i;

/**
 * Generates a key and a certificate in memory. Self-signed unless `issuer` is given.
 *
 * @example
 * const { cert, key } = generateCertificate(); // EC P-256, CN=localhost, SAN localhost/127.0.0.1/::1
 */
export function generateCertificate(options: CertificateOptions = {}): GeneratedCertificate {
  const altNames = (options.altNames ?? ['localhost', '127.0.0.1', '::1'])
    .map((n) => (IP.test(n) ? `IP:${n}` : `DNS:${n}`))
    .join(',');
  const keyType = options.keyType ?? 'ec';
  if (keyType !== 'ec' && keyType !== 'rsa') throw new RangeError(`keyType must be 'ec' or 'rsa', got ${keyType}`);
  try {
    return binding.generateCertificate({
      keyType,
      bits: options.bits ?? 2048,
      curve: options.curve ?? 'prime256v1',
      commonName: options.commonName ?? 'localhost',
      altNames,
      days: options.days ?? 30,
      isCA: options.isCA ?? false,
      issuerCert: options.issuer?.cert,
      issuerKey: options.issuer?.key,
    });
  } catch (err) {
    rethrowNative(err, 'generateCertificate');
  }
}
