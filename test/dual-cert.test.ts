// Several certificates in one context (cert/key arrays, as node:tls): OpenSSL presents the one the
// client's signature algorithms (TLS 1.3) or cipher suites (TLS 1.2) allow.
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { once } from 'node:events';
import tls from 'node:tls';

import { SecureContext, TLSConnection, generateCertificate } from '../lib';
import { connectTls, echo, sClient, useServerFixture, within } from './server-helpers';

const CA = generateCertificate({ isCA: true, commonName: 'Dual Test CA' });
const RSA = generateCertificate({ keyType: 'rsa', issuer: CA, commonName: 'rsa.localhost' });
const EC = generateCertificate({ keyType: 'ec', issuer: CA, commonName: 'ec.localhost' });
// Each PEM carries its chain; keys in another order than the certificates, as node allows.
const DUAL = { cert: [RSA.cert + CA.cert, EC.cert + CA.cert], key: [EC.key, RSA.key] };

const fx = useServerFixture();

interface Seen {
  /** What the client got. */
  type: string | undefined;
  cn: string;
  issuer: string;
  /** What the server reports it presented. */
  serverSaw: string | undefined;
  reused: boolean;
  session: Buffer | undefined;
}

async function connect(port: number, conns: TLSConnection[], opts: tls.ConnectionOptions): Promise<Seen> {
  const before = conns.length;
  const c = await connectTls({ port, ...opts });
  fx.sockets.push(c);
  const sessions: Buffer[] = [];
  c.on('session', (s: Buffer) => sessions.push(s));
  // Once: node 20 answers a second call on a connection with a chain with undefined / {}.
  // (On a resumed connection node's client may have no peer certificate to show: then undefined.)
  const peer = c.getPeerX509Certificate();
  c.write('x');
  await within(once(c, 'data'), 5000, 'echo');
  const conn = conns[before];
  const seen: Seen = {
    type: peer?.publicKey.asymmetricKeyType,
    cn: peer?.subject.replace(/^CN=/, '') ?? '',
    issuer: peer?.issuer.replace(/^CN=/, '') ?? '',
    serverSaw: conn.getX509Certificate()?.fingerprint256 === peer?.fingerprint256 ? 'same' : 'different',
    reused: c.isSessionReused(),
    session: sessions[sessions.length - 1] ?? c.getSession(),
  };
  c.end();
  await within(once(c, 'close'), 5000, 'close');
  return seen;
}

describe('dual certificates (RSA + ECDSA)', () => {
  test.each(['TLSv1.2', 'TLSv1.3'] as const)(
    '%s: the client gets the certificate its signature algorithms allow',
    async (v) => {
      const { port, connections } = await fx.start(DUAL, echo);
      const base = { minVersion: v, maxVersion: v } as const;
      const ec = await connect(port, connections, { ...base, sigalgs: 'ECDSA+SHA256' });
      expect(ec).toMatchObject({ type: 'ec', cn: 'ec.localhost', issuer: 'Dual Test CA', serverSaw: 'same' });
      const rsaSigalgs = v === 'TLSv1.3' ? 'rsa_pss_rsae_sha256' : 'RSA+SHA256:rsa_pss_rsae_sha256';
      const rsa = await connect(port, connections, { ...base, sigalgs: rsaSigalgs });
      expect(rsa).toMatchObject({ type: 'rsa', cn: 'rsa.localhost', issuer: 'Dual Test CA', serverSaw: 'same' });
    },
  );

  test('TLS 1.2: the cipher suite chooses (ECDHE-ECDSA or ECDHE-RSA)', async () => {
    const { port, connections } = await fx.start(DUAL, echo);
    const base = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const;
    const ec = await connect(port, connections, { ...base, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    expect(ec).toMatchObject({ type: 'ec', serverSaw: 'same' });
    const rsa = await connect(port, connections, { ...base, ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
    expect(rsa).toMatchObject({ type: 'rsa', serverSaw: 'same' });
  });

  test('openssl s_client: -sigalgs ECDSA+SHA256 gets the EC certificate, an RSA-only client the RSA one', async () => {
    const { port } = await fx.start(DUAL, echo);
    const ec = await sClient(port, ['-sigalgs', 'ECDSA+SHA256', '-showcerts'], { input: 'hi\n', inputDelayMs: 300 });
    expect(ec.stdout).toMatch(/subject=.*CN ?= ?ec\.localhost/);
    // The chain that came with this certificate's PEM: leaf and CA.
    expect(ec.stdout.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(ec.stdout).toMatch(/1 s:.*CN ?= ?Dual Test CA/);
    expect(ec.stdout).toMatch(/Peer signature type: ECDSA/);
    const rsa = await sClient(port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256'], {
      input: 'hi\n',
      inputDelayMs: 300,
    });
    expect(rsa.stdout).toMatch(/subject=.*CN ?= ?rsa\.localhost/);
    expect(rsa.stdout).toMatch(/Server public key is 2048 bit/);
  });

  test.each(['TLSv1.2', 'TLSv1.3'] as const)('%s: sessions resume with either certificate', async (v) => {
    const { port, connections } = await fx.start(DUAL, echo);
    for (const sigalgs of ['ECDSA+SHA256', 'rsa_pss_rsae_sha256']) {
      const opts = { minVersion: v, maxVersion: v, sigalgs } as const;
      const first = await connect(port, connections, opts);
      expect(first.reused).toBe(false);
      const again = await connect(port, connections, { ...opts, session: first.session });
      expect(again.reused).toBe(true);
    }
  });

  test('a key in { pem, passphrase } form, encrypted', async () => {
    const encrypted = createPrivateKey(EC.key)
      .export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'secret' })
      .toString();
    const { port, connections } = await fx.start(
      { cert: [RSA.cert, EC.cert], key: [RSA.key, { pem: encrypted, passphrase: 'secret' }] },
      echo,
    );
    const ec = await connect(port, connections, { sigalgs: 'ECDSA+SHA256' });
    expect(ec.type).toBe('ec');
  });

  test('validation names the option: counts, types, pairs', () => {
    const other = generateCertificate({ keyType: 'ec' });
    expect(() => new SecureContext({ cert: [RSA.cert, EC.cert], key: [RSA.key] })).toThrow(RangeError);
    expect(() => new SecureContext({ cert: [RSA.cert, EC.cert], key: [RSA.key] })).toThrow(/^key: 1 key\(s\) for 2/);
    expect(() => new SecureContext({ cert: [EC.cert, other.cert], key: [EC.key, other.key] })).toThrow(
      /^cert\[1\]: a second ec certificate/,
    );
    expect(() => new SecureContext({ cert: [RSA.cert, EC.cert], key: [RSA.key, other.key] })).toThrow(
      /^key\[1\] does not match cert\[1\]/,
    );
    const rsa2 = generateCertificate({ keyType: 'rsa' });
    expect(() => new SecureContext({ cert: [RSA.cert, EC.cert], key: [RSA.key, rsa2.key] })).toThrow(
      /^key\[1\]: a second rsa key/,
    );
    const ed = generateKeyPairSync('ed25519').privateKey;
    expect(
      () =>
        new SecureContext({ cert: [RSA.cert, EC.cert], key: [RSA.key, ed.export({ format: 'pem', type: 'pkcs8' })] }),
    ).toThrow(/^key\[1\]: a ed25519 key, but cert has no ed25519 certificate/);
    expect(() => new SecureContext({ cert: [], key: [] })).toThrow(TypeError);
    expect(() => new SecureContext({ cert: [RSA.cert, 42 as unknown as string], key: [RSA.key, EC.key] })).toThrow(
      /^cert must be/,
    );
    expect(
      () => new SecureContext({ cert: [RSA.cert, EC.cert], key: [RSA.key, { pem: EC.key, extra: 1 } as never] }),
    ).toThrow(/key\[1\]: unknown property 'extra'/);
    expect(() => new SecureContext({ cert: [RSA.cert], certFile: 'x.pem', key: [RSA.key] })).toThrow(
      /cert or certFile/,
    );
  });

  test('a single-element array is the same as one certificate', async () => {
    const ctx = new SecureContext({ cert: [EC.cert], key: [EC.key] });
    const same = new SecureContext({ cert: EC.cert, key: EC.key });
    expect(ctx.sessionIdContext.equals(same.sessionIdContext)).toBe(true);
  });
});
