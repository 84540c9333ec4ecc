// The tls.TLSSocket reading surface of TLSConnection, compared value by value with what node:tls itself
// reports for the same client: what mTLS middleware and loggers read must not change when a server
// moves from node:tls to this package.
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';

import { TLSConnection, createServer, generateCertificate, wrap } from '../lib';
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
    ownKeys: Object.keys(c.getCertificate() ?? {}).sort(),
    ownFingerprint: (c.getCertificate() as Partial<tls.PeerCertificate> | null)?.fingerprint256,
    ownX509: c.getX509Certificate()?.fingerprint256,
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

test.each(['TLSv1.2', 'TLSv1.3'] as const)(
  '%s: keying material and Finished messages match the client, sigalgs match node:tls, getSession is a DER',
  async (version) => {
    const facts = async (kind: 'osc' | 'node') => {
      let server:
        { sigalgs: string[]; ekm: Buffer; finished?: Buffer; peerFinished?: Buffer; session?: Buffer } | undefined;
      const onConn = (c: TLSConnection | tls.TLSSocket) => {
        server = {
          sigalgs: c.getSharedSigalgs(),
          ekm: c.exportKeyingMaterial(32, 'EXPERIMENTAL-osc', Buffer.from('ctx')),
          finished: c.getFinished(),
          peerFinished: c.getPeerFinished(),
          session: c.getSession(),
        };
        c.on('error', () => undefined);
        c.end('bye');
      };
      const s = kind === 'osc' ? createServer(base, onConn) : tls.createServer(base, onConn);
      await new Promise<void>((r) => s.listen(0, HOST, r));
      const c = tls.connect({
        host: HOST,
        port: (s.address() as { port: number }).port,
        rejectUnauthorized: false,
        maxVersion: version,
      });
      await once(c, 'secureConnect');
      const client = {
        ekm: c.exportKeyingMaterial(32, 'EXPERIMENTAL-osc', Buffer.from('ctx')),
        finished: c.getFinished(),
        peerFinished: c.getPeerFinished(),
      };
      c.resume();
      await within(once(c, 'close'), 5000, 'close');
      await new Promise((r) => s.close(r));
      return { server: server!, client };
    };
    const mine = await facts('osc');
    expect(mine.server.ekm.equals(mine.client.ekm)).toBe(true);
    expect(mine.server.finished?.equals(mine.client.peerFinished!)).toBe(true);
    expect(mine.server.peerFinished?.equals(mine.client.finished!)).toBe(true);
    expect(mine.server.session!.length).toBeGreaterThan(50);
    expect(mine.server.session![0]).toBe(0x30); // a DER SEQUENCE
    const node = await facts('node');
    expect(mine.server.sigalgs).toEqual(node.server.sigalgs);
    expect(mine.server.sigalgs.length).toBeGreaterThan(0);
  },
);

test('after close: getSession/getFinished undefined, sigalgs empty, exportKeyingMaterial throws ERR_OSC_CLOSED', async () => {
  let conn: TLSConnection | undefined;
  const server = createServer(base, (c) => {
    conn = c;
    c.end();
  });
  await new Promise<void>((r) => server.listen(0, HOST, r));
  const c = tls.connect({ host: HOST, port: server.address()!.port, rejectUnauthorized: false });
  c.resume();
  await within(once(c, 'close'), 5000, 'close');
  await within(new Promise((r) => (conn!.closeInfo ? r(undefined) : conn!.once('close', r))), 5000, 'server close');
  expect(conn!.getSession()).toBeUndefined();
  expect(conn!.getFinished()).toBeUndefined();
  expect(conn!.getSharedSigalgs()).toEqual([]);
  expect(conn!.getX509Certificate()).toBeUndefined();
  expect(conn!.getCertificate()).toEqual({});
  expect(() => conn!.exportKeyingMaterial(16, 'x')).toThrow(expect.objectContaining({ code: 'ERR_OSC_CLOSED' }));
  expect(() => conn!.exportKeyingMaterial(0, 'x')).toThrow(RangeError);
  await new Promise((r) => server.close(r));
});

test('wrap(): the same live facts over a net socket', async () => {
  let server: { ekm: Buffer; finished?: Buffer; sigalgs: string[] } | undefined;
  const s = net.createServer((socket) => {
    const c = wrap(socket, base);
    c.on('error', () => undefined);
    c.on('secure', () => {
      server = {
        ekm: c.exportKeyingMaterial(16, 'label', Buffer.from('c')),
        finished: c.getFinished(),
        sigalgs: c.getSharedSigalgs(),
      };
      c.end('bye');
    });
  });
  await new Promise<void>((r) => s.listen(0, HOST, r));
  const c = tls.connect({ host: HOST, port: (s.address() as net.AddressInfo).port, rejectUnauthorized: false });
  await once(c, 'secureConnect');
  const ekm = c.exportKeyingMaterial(16, 'label', Buffer.from('c'));
  const peerFinished = c.getPeerFinished();
  c.resume();
  await within(once(c, 'close'), 5000, 'close');
  s.close();
  expect(server!.ekm.equals(ekm)).toBe(true);
  expect(server!.finished?.equals(peerFinished!)).toBe(true);
  expect(server!.sigalgs.length).toBeGreaterThan(0);
});
