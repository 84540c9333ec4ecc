// OCSP stapling: a static `ocspResponse` (with a setter for refresh) and node's `OCSPRequest` event,
// checked with real OCSP responses made by `openssl ocsp` from an openssl CA index, and read by real
// clients (`openssl s_client -status`, tls.connect({ requestOCSP: true })).
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

import { SecureContext, createServer, generateCertificate, wrap } from '../lib';
import {
  HOST,
  PLATFORM,
  collectTlsClientErrors,
  echo,
  onlyWhere,
  run,
  until,
  useServerFixture,
  within,
} from './server-helpers';

const CA = generateCertificate({ commonName: 'OCSP test CA', isCA: true });
const LEAF = generateCertificate({ commonName: 'ocsp.test', altNames: ['ocsp.test'], issuer: CA });
const OTHER = generateCertificate({ commonName: 'other.test', altNames: ['other.test'], issuer: CA });
const der = (pem: string) => new X509Certificate(pem).raw;

let dir: string;
/** Responses for LEAF made by `openssl ocsp` as a CA responder: `good` twice (ECDSA: different bytes), `revoked`. */
let good: Buffer, good2: Buffer, revoked: Buffer;

async function ocspResponse(status: 'V' | 'R', out: string): Promise<Buffer> {
  const cert = new X509Certificate(LEAF.cert);
  const when = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  const line = [
    status,
    when(new Date(cert.validTo)),
    status === 'R' ? when(new Date()) : '',
    cert.serialNumber,
    'unknown',
    '/CN=ocsp.test',
  ];
  writeFileSync(path.join(dir, 'index.txt'), line.join('\t') + '\n');
  const f = (n: string) => path.join(dir, n);
  let r = await run('openssl', [
    'ocsp',
    '-issuer',
    f('ca.pem'),
    '-cert',
    f('leaf.pem'),
    '-reqout',
    f('req.der'),
    '-no_nonce',
  ]);
  expect(r.code).toBe(0);
  r = await run('openssl', [
    'ocsp',
    '-index',
    f('index.txt'),
    '-rsigner',
    f('ca.pem'),
    '-rkey',
    f('ca.key'),
    '-CA',
    f('ca.pem'),
    '-reqin',
    f('req.der'),
    '-respout',
    f(out),
    '-ndays',
    '1',
  ]);
  expect(r.code).toBe(0);
  return readFileSync(f(out));
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'osc-ocsp-'));
  writeFileSync(path.join(dir, 'ca.pem'), CA.cert);
  writeFileSync(path.join(dir, 'ca.key'), CA.key);
  writeFileSync(path.join(dir, 'leaf.pem'), LEAF.cert);
  good = await ocspResponse('V', 'good.der');
  good2 = await ocspResponse('V', 'good2.der');
  revoked = await ocspResponse('R', 'revoked.der');
  expect(good.equals(good2)).toBe(false);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fx = useServerFixture();

/** What a node client asking for OCSP got stapled (null: nothing), after a complete round trip. */
/** tls.connect's options; `requestOCSP` is one of node's, missing from @types/node's ConnectionOptions. */
type ClientOptions = tls.ConnectionOptions & { requestOCSP?: boolean };

async function stapled(port: number, opts: ClientOptions = {}): Promise<Buffer | null> {
  const c = tls.connect(<ClientOptions>{
    host: HOST,
    port,
    servername: 'ocsp.test',
    rejectUnauthorized: false,
    requestOCSP: true,
    ...opts,
  });
  fx.sockets.push(c);
  let response: Buffer | null = null;
  c.on('OCSPResponse', (r: Buffer) => (response = r));
  await within(once(c, 'secureConnect'), 5000, 'secureConnect');
  const echoed = once(c, 'data');
  c.write('x');
  await within(echoed, 5000, 'echo');
  c.destroy();
  return response;
}

/** openssl s_client -status against the server, reading its OCSP section. */
async function sClientStatus(port: number, servername = 'ocsp.test'): Promise<string> {
  const r = await run('openssl', ['s_client', '-connect', `${HOST}:${port}`, '-servername', servername, '-status'], {
    input: 'Q\n',
  });
  return r.stdout;
}

describe('a static ocspResponse', () => {
  test('stapled for clients that ask (s_client -status, requestOCSP), never for the others; the setter refreshes it', async () => {
    const { port, server } = await fx.start({ cert: LEAF.cert, key: LEAF.key, ocspResponse: good }, echo);
    const out = await sClientStatus(port);
    expect(out).toMatch(/OCSP Response Status: successful/);
    expect(out).toMatch(/Cert Status: good/);
    expect(await stapled(port)).toEqual(good);
    expect(await stapled(port, { requestOCSP: false })).toBeNull();
    server.context.ocspResponse = revoked; // refresh: the next handshakes staple the new one
    expect(server.context.ocspResponse).toEqual(revoked);
    expect(await sClientStatus(port)).toMatch(/Cert Status: revoked/);
    expect(await stapled(port)).toEqual(revoked);
    server.context.ocspResponse = null;
    expect(await stapled(port)).toBeNull();
    expect(await sClientStatus(port)).toMatch(/OCSP response: no response sent/);
    expect(() => (server.context.ocspResponse = 'x' as never)).toThrow(TypeError);
  });

  test('per host name: each context staples its own', async () => {
    const other = new SecureContext({ ...OTHER, ocspResponse: good2 });
    const { port } = await fx.start(
      { cert: LEAF.cert, key: LEAF.key, ocspResponse: good, contexts: { 'other.test': other } },
      echo,
    );
    expect(await stapled(port)).toEqual(good);
    expect(await stapled(port, { servername: 'other.test' })).toEqual(good2);
  });
});

describe("node's OCSPRequest event", () => {
  test('emitted only when the client asks, with the certificate and its issuer; async answers are stapled', async () => {
    // The issuer is found in the chain (here) or among the trusted CAs (the wrap() test), as node does.
    const { port, server } = await fx.start({ cert: LEAF.cert + CA.cert, key: LEAF.key, ocspResponse: good2 }, echo);
    const calls: Array<[Buffer, Buffer | null]> = [];
    server.on('OCSPRequest', (cert, issuer, cb) => {
      calls.push([cert, issuer]);
      setTimeout(() => cb(null, good), 20);
    });
    expect(await stapled(port)).toEqual(good); // the listener decides, not the static response
    expect(calls).toHaveLength(1);
    expect(calls[0][0]).toEqual(der(LEAF.cert));
    expect(calls[0][1]).toEqual(der(CA.cert));
    expect(await stapled(port, { requestOCSP: false })).toBeNull();
    expect(calls).toHaveLength(1);
    const out = await sClientStatus(port);
    expect(out).toMatch(/Cert Status: good/);
    expect(calls).toHaveLength(2);
  });

  test('callback(null, null) staples nothing; callback(err) fails that handshake alone; removing the listener restores the static one', async () => {
    const { port, server } = await fx.start({ cert: LEAF.cert, key: LEAF.key, ocspResponse: good2 }, echo);
    const errors = collectTlsClientErrors(server);
    let mode: 'none' | 'fail' = 'none';
    const listener = (_c: Buffer, _i: Buffer | null, cb: (err: Error | null, r?: Buffer | null) => void) =>
      mode === 'none' ? cb(null, null) : setImmediate(() => cb(new Error('responder down')));
    server.on('OCSPRequest', listener);
    expect(await stapled(port)).toBeNull();
    mode = 'fail';
    await expect(stapled(port)).rejects.toThrow();
    await until(() => errors.length === 1, 5000, 'tlsClientError');
    expect(errors[0].err.reason).toBe('responder down');
    expect(await stapled(port, { requestOCSP: false })).toBeNull(); // others go on
    server.off('OCSPRequest', listener);
    expect(await stapled(port)).toEqual(good2);
  });

  test('wrap(): the connection’s OCSPRequest listener', async () => {
    const context = new SecureContext({ cert: LEAF.cert, key: LEAF.key, ca: CA.cert });
    const srv = net.createServer((socket) => {
      const conn = wrap(socket, { context });
      conn.on('error', () => undefined);
      conn.on('OCSPRequest', (cert, issuer, cb) => {
        expect(cert).toEqual(der(LEAF.cert));
        expect(issuer).toEqual(der(CA.cert));
        setImmediate(() => cb(null, revoked));
      });
      conn.pipe(conn);
    });
    await new Promise<void>((r) => srv.listen(0, HOST, r));
    try {
      const port = (srv.address() as net.AddressInfo).port;
      expect(await stapled(port)).toEqual(revoked);
      expect(await sClientStatus(port)).toMatch(/Cert Status: revoked/);
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});

describe('threaded servers', () => {
  const threadsTest = onlyWhere(test, PLATFORM.reusePort, 'no SO_REUSEPORT, which threads need to share a port');
  threadsTest('the static response and the OCSPRequest listener (in the main thread) serve every thread', async () => {
    const handler = path.join(__dirname, 'fixtures', 'echo-handler.js');
    const server = createServer({ threads: 2, handler, cert: LEAF.cert + CA.cert, key: LEAF.key, ocspResponse: good });
    try {
      await within(new Promise<void>((r) => server.listen(0, HOST, r)), 20000, 'threads listening');
      const port = server.address()!.port;
      for (let i = 0; i < 4; i++) expect(await stapled(port)).toEqual(good);
      let calls = 0;
      server.on('OCSPRequest', (cert, issuer, cb) => {
        calls++;
        expect(issuer).toEqual(der(CA.cert));
        setImmediate(() => cb(null, revoked));
      });
      // The threads hear of the listener by message: from then on, every handshake asks it.
      const end = Date.now() + 5000;
      while (!(await stapled(port))?.equals(revoked)) {
        if (Date.now() > end) throw new Error('the threads never asked the OCSPRequest listener');
      }
      const before = calls;
      for (let i = 0; i < 4; i++) expect(await stapled(port)).toEqual(revoked);
      expect(calls).toBe(before + 4);
      expect(server.threadStats().every((s) => s.handshakes > 0)).toBe(true);
    } finally {
      await within(new Promise<void>((r) => server.close(() => r())), 20000, 'threads closed');
    }
  });
});
