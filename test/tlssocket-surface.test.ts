// The tls.TLSSocket reading surface of TLSConnection, compared value by value with what node:tls itself
// reports for the same client: what mTLS middleware and loggers read must not change when a server
// moves from node:tls to this package.
import { once } from 'node:events';
import tls from 'node:tls';

import { TLSConnection, createServer, generateCertificate } from '../lib';
import { CERT, HOST, within } from './server-helpers';

const CA = generateCertificate({ isCA: true, commonName: 'test ca' });
const SIGNED = generateCertificate({ commonName: 'client', issuer: CA });
const SELF = generateCertificate({ commonName: 'self' });

type Surface = Record<string, unknown>;

function surfaceOf(c: TLSConnection | tls.TLSSocket): Surface {
  const peer = c.getPeerCertificate() as Partial<tls.PeerCertificate>;
  return {
    servername: c.servername,
    alpnProtocol: c.alpnProtocol,
    authorized: c.authorized,
    authorizationError: c.authorizationError ?? null,
    peerKeys: Object.keys(peer).sort(),
    peerFingerprint: peer.fingerprint256,
    peerSubject: peer.subject,
    x509: c.getPeerX509Certificate()?.fingerprint256,
    cipher: c.getCipher(),
    protocol: c.getProtocol(),
    reused: c.isSessionReused(),
    encrypted: c.encrypted,
    remoteFamily: c.remoteFamily,
  };
}

/** The surface seen by a server of `kind` for one client; `session` to offer one. */
async function seen(
  kind: 'osc' | 'node',
  serverOptions: tls.TlsOptions,
  clientOptions: tls.ConnectionOptions,
): Promise<Surface[]> {
  const surfaces: Surface[] = [];
  const onConn = (c: TLSConnection | tls.TLSSocket) => {
    surfaces.push(surfaceOf(c));
    c.on('error', () => undefined);
    c.end('bye');
  };
  const server =
    kind === 'osc'
      ? createServer({ ...(serverOptions as object), serviceName: 'surface' }, onConn)
      : tls.createServer({ ...serverOptions, sessionIdContext: 'surface' }, onConn);
  await new Promise<void>((r) => server.listen(0, HOST, r));
  const port = (server.address() as { port: number }).port;
  let session: Buffer | undefined;
  for (let i = 0; i < 2; i++) {
    const c = tls.connect({ host: HOST, port, rejectUnauthorized: false, session, ...clientOptions });
    c.on('error', () => undefined);
    c.on('session', (s: Buffer) => (session = s));
    c.resume();
    await within(once(c, 'close'), 10000, `${kind} client close`);
  }
  await new Promise((r) => server.close(r));
  return surfaces;
}

const base = { cert: CERT.cert, key: CERT.key };

test.each([
  ['no client certificate asked', {}, {}],
  ['ALPN and SNI', { ALPNProtocols: ['h2', 'http/1.1'] }, { ALPNProtocols: ['http/1.1'], servername: 'localhost' }],
  [
    'TLS 1.2, resumed on the second connection',
    // The same cipher list on both: node:tls has its own default order.
    { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384' },
    { maxVersion: 'TLSv1.2' },
  ],
  [
    'certificate asked, a self-signed one sent',
    { requestCert: true, rejectUnauthorized: false, ca: CA.cert },
    { cert: SELF.cert, key: SELF.key },
  ],
  [
    'certificate asked, one from the trusted CA sent',
    { requestCert: true, rejectUnauthorized: false, ca: CA.cert },
    { cert: SIGNED.cert, key: SIGNED.key },
  ],
] as const)('%s: the same values as node:tls', async (_what, serverExtra, clientOptions) => {
  const mine = await seen('osc', { ...base, ...serverExtra } as tls.TlsOptions, clientOptions as tls.ConnectionOptions);
  const node = await seen(
    'node',
    { ...base, ...serverExtra } as tls.TlsOptions,
    clientOptions as tls.ConnectionOptions,
  );
  expect(mine).toEqual(node);
  expect(mine.length).toBe(2);
});

test('certificate asked, none sent: not authorized, also when the session resumes (node:tls says authorized then)', async () => {
  const server = { ...base, requestCert: true, rejectUnauthorized: false, ca: CA.cert } as tls.TlsOptions;
  const mine = await seen('osc', server, {});
  const node = await seen('node', server, {});
  const auth = (s: Surface) => [s.reused, s.authorized, s.authorizationError];
  expect(mine.map(auth)).toEqual([
    [false, false, 'UNABLE_TO_GET_ISSUER_CERT'],
    [true, false, 'UNABLE_TO_GET_ISSUER_CERT'],
  ]);
  // node:tls (20, 22, 24) reports the resumed connection of a client that never sent a certificate as
  // authorized: a difference on purpose. Everything else is the same.
  expect(auth(node[0])).toEqual(auth(mine[0]));
  const rest = (s: Surface) => ({ ...s, authorized: undefined, authorizationError: undefined });
  expect(mine.map(rest)).toEqual(node.map(rest));
});

test('bytesRead and bytesWritten count the plaintext; address() is the local one', async () => {
  let conn: TLSConnection | undefined;
  const server = createServer(base, (c) => {
    conn = c;
    c.on('data', () => c.end('0123456789'));
  });
  await new Promise<void>((r) => server.listen(0, HOST, r));
  const port = server.address()!.port;
  const c = tls.connect({ host: HOST, port, rejectUnauthorized: false });
  await once(c, 'secureConnect');
  c.write('hello');
  c.resume();
  await within(once(c, 'end'), 5000, 'end');
  c.destroy();
  expect(conn!.bytesRead).toBe(5);
  expect(conn!.bytesWritten).toBe(10);
  expect(conn!.address()).toEqual({ address: HOST, family: 'IPv4', port });
  await new Promise((r) => server.close(r));
});
