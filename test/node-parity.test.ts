// node:tls / node:https parity: each "same" row of the README's compatibility table that no other test
// file covers, checked side by side. The same client runs against a node:tls (or node:https) server and
// against this package's, and what the server side sees or returns must be equal.
import { once } from 'node:events';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';

import { HttpsServer, Server, TLSConnection, createHttpsServer, createServer, generateCertificate } from '../lib';
import { CERT, HOST, until, within } from './server-helpers';

const CA = generateCertificate({ isCA: true, commonName: 'parity ca' });
const SIGNED = generateCertificate({ commonName: 'client', issuer: CA });
const base = { cert: CERT.cert, key: CERT.key };

type Kind = 'node' | 'osc';
type AnyServer = tls.Server | Server;

function makeServer(kind: Kind, options: object, onConn: (c: TLSConnection | tls.TLSSocket) => void): AnyServer {
  return kind === 'osc'
    ? createServer({ ...base, ...options }, onConn)
    : tls.createServer({ ...base, ...options } as tls.TlsOptions, onConn);
}

async function listen(server: AnyServer | HttpsServer | https.Server, port = 0): Promise<number> {
  await new Promise<void>((r) => (server as net.Server).listen(port, HOST, r));
  return (server.address() as net.AddressInfo).port;
}

const closeServer = (server: AnyServer | HttpsServer | https.Server) =>
  new Promise<unknown>((r) => (server as net.Server).close(r));

describe('socket members, on the server side of one connection', () => {
  // What a server reads off the socket at secureConnection, after setTimeout, and once it closed.
  async function members(kind: Kind) {
    const out: Record<string, unknown> = {};
    let closed!: Promise<unknown>;
    let clientPort = 0;
    const server = makeServer(kind, {}, (c) => {
      c.on('error', () => undefined);
      const read = (s: TLSConnection | tls.TLSSocket) => ({
        readyState: s.readyState,
        pending: s.pending,
        connecting: s.connecting,
        timeout: s.timeout,
        bufferSize: s.bufferSize,
        localFamily: s.localFamily,
        ephemeral: s.getEphemeralKeyInfo(),
        ticket: s.getTLSTicket(),
        encrypted: s.encrypted,
        destroyed: s.destroyed,
      });
      out.open = {
        ...read(c),
        remoteAddress: c.remoteAddress,
        remotePortIsClients: c.remotePort === clientPort,
        remoteFamily: c.remoteFamily,
        localAddress: c.localAddress,
        localPortIsServers: c.localPort === port,
        address: { ...c.address(), port: (c.address() as net.AddressInfo).port === port },
        disableRenegotiation: c.disableRenegotiation(),
        badFragment: [
          codeOf(() => c.setMaxSendFragment('x' as unknown as number)),
          codeOf(() => c.setMaxSendFragment(2 ** 40)),
          codeOf(() => c.setMaxSendFragment(1.5)),
        ],
        outOfRangeFragment: c.setMaxSendFragment(100),
        setTimeoutReturnsSocket: c.setTimeout(5000) === c,
        timeoutAfterSet: c.timeout,
      };
      closed = new Promise((resolve) => c.once('close', () => resolve((out.closed = read(c)))));
      c.end('bye');
    });
    const port = await listen(server);
    const client = tls.connect({ host: HOST, port, rejectUnauthorized: false });
    client.once('connect', () => (clientPort = client.localPort!));
    client.resume();
    await within(once(client, 'close'), 5000, `${kind} client close`);
    await within(
      until(() => closed !== undefined, 5000, 'the connection'),
      5000,
      'connection',
    );
    await within(closed, 5000, `${kind} server-side close`);
    await closeServer(server);
    return out;
  }

  function codeOf(fn: () => unknown): string | undefined {
    try {
      fn();
      return undefined;
    } catch (err) {
      return (err as { code?: string }).code;
    }
  }

  test('readyState, pending, connecting, timeout, bufferSize, addresses, getEphemeralKeyInfo, getTLSTicket, ...', async () => {
    const mine = await members('osc');
    const node = await members('node');
    expect(mine).toEqual(node);
    // The values themselves, so that a change in node shows up here as well.
    expect(mine.open).toMatchObject({ readyState: 'open', pending: false, timeout: 0, ephemeral: null });
    expect(mine.open).toMatchObject({ remotePortIsClients: true, localPortIsServers: true, timeoutAfterSet: 5000 });
    expect(mine.closed).toMatchObject({ readyState: 'closed', pending: true, bufferSize: undefined, ticket: null });
  });

  test('setMaxSendFragment: node applies a size in [512, 16384] (true); here it is never applied (false)', async () => {
    const answers = async (kind: Kind) => {
      let got: boolean[] = [];
      const server = makeServer(kind, {}, (c) => {
        c.on('error', () => undefined);
        got = [c.setMaxSendFragment(512), c.setMaxSendFragment(16384), c.setMaxSendFragment(16385)];
        c.end();
      });
      const client = tls.connect({ host: HOST, port: await listen(server), rejectUnauthorized: false });
      client.resume();
      await within(once(client, 'close'), 5000, 'close');
      await closeServer(server);
      return got;
    };
    expect(await answers('node')).toEqual([true, true, false]);
    expect(await answers('osc')).toEqual([false, false, false]);
  });
});

describe('server methods and events', () => {
  // Everything a server says through its life, in order, for the same sequence of calls.
  async function lifeOf(kind: Kind) {
    const log: unknown[] = [];
    const server = makeServer(kind, {}, (c) => {
      c.on('error', () => undefined);
      c.on('data', () => c.end());
    });
    for (const e of ['listening', 'close'] as const) (server as net.Server).on(e, () => log.push(`event ${e}`));
    const ret = (v: unknown) => (v === server ? 'this' : v);
    log.push(['listening before', server.listening, server.address()]);
    log.push(
      await new Promise((r) =>
        server.close((err?: Error) => r(['close before listen', (err as NodeJS.ErrnoException | undefined)?.code])),
      ),
    );
    log.push(['ref', ret(server.ref()), 'unref', ret(server.unref()), 'ref', ret(server.ref())]);
    const port = await listen(server);
    const address = server.address() as net.AddressInfo;
    log.push(['listening', server.listening, address.address, address.family, address.port === port]);
    try {
      (server as net.Server).listen(0, HOST);
      log.push('second listen did not throw');
    } catch (err) {
      log.push(['second listen', (err as { code?: string }).code]);
    }
    // A second server on the same port: 'error' with EADDRINUSE.
    const other = makeServer(kind, {}, () => undefined);
    const inUse = once(other, 'error');
    (other as net.Server).listen(port, HOST);
    const [err] = (await within(inUse, 5000, 'EADDRINUSE')) as [NodeJS.ErrnoException];
    log.push(['EADDRINUSE', err.code, err.syscall, other.listening]);
    // getConnections with one connection open.
    const client = tls.connect({ host: HOST, port, rejectUnauthorized: false });
    client.on('error', () => undefined);
    await once(client, 'secureConnect');
    await new Promise<void>((r) => setTimeout(r, 50));
    log.push(await new Promise((r) => server.getConnections((e, n) => r(['getConnections', e, n]))));
    // close() waits for the connection; the callback gets no error.
    const closing = new Promise((r) => server.close((e) => r(['close callback', e ?? null])));
    log.push(['listening while closing', server.listening]);
    client.end('x');
    client.resume();
    log.push(await within(closing, 5000, `${kind} close`));
    log.push(['listening after', server.listening, server.address()]);
    return log;
  }

  test('listening, address(), close(cb) before and after listen, listen twice, EADDRINUSE, getConnections, ref/unref, events', async () => {
    const mine = await lifeOf('osc');
    const node = await lifeOf('node');
    expect(mine).toEqual(node);
    expect(mine).toContainEqual(['close before listen', 'ERR_SERVER_NOT_RUNNING']);
    expect(mine).toContainEqual(['second listen', 'ERR_SERVER_ALREADY_LISTEN']);
    expect(mine).toContainEqual(['EADDRINUSE', 'EADDRINUSE', 'listen', false]);
    expect(mine).toContainEqual(['getConnections', null, 1]);
  });

  test('[Symbol.asyncDispose] closes a listening server and resolves at once on one that is not', async () => {
    const dispose = (Symbol as { asyncDispose?: symbol }).asyncDispose;
    expect(dispose).toBeDefined();
    for (const kind of ['node', 'osc'] as const) {
      const server = makeServer(kind, {}, () => undefined) as unknown as Record<symbol, () => Promise<void>> &
        AnyServer;
      await within(server[dispose!](), 1000, `${kind} dispose before listen`);
      await listen(server);
      const closed = once(server, 'close');
      await within(server[dispose!](), 5000, `${kind} dispose`);
      await within(closed, 5000, `${kind} close event`);
      expect([kind, server.listening]).toEqual([kind, false]);
    }
  });
});

describe('options: the same outcome for the same client', () => {
  // What a tls.connect client and the server saw; errors as "failed" (the reasons differ in wording).
  async function outcome(kind: Kind, serverOptions: object, clientOptions: tls.ConnectionOptions) {
    let seen: Record<string, unknown> | undefined;
    let clientErrors = 0;
    const server = makeServer(kind, { ...serverOptions }, (c) => {
      c.on('error', () => undefined);
      seen = { authorized: c.authorized, authorizationError: c.authorizationError ?? null, alpn: c.alpnProtocol };
      c.on('data', () => c.end('bye'));
    });
    server.on('tlsClientError', () => clientErrors++);
    const port = await listen(server);
    const c = tls.connect({ host: HOST, port, rejectUnauthorized: false, ...clientOptions });
    let error: Error | undefined;
    let client: Record<string, unknown> = {};
    c.on('error', (e) => (error = e));
    let reply = '';
    c.on('data', (d: Buffer) => (reply += d.toString()));
    c.once('secureConnect', () => {
      client = { protocol: c.getProtocol(), cipher: c.getCipher().name, alpn: c.alpnProtocol };
      c.write('hi');
    });
    await within(new Promise((r) => c.once('close', r)), 5000, `${kind} client close`);
    if (error)
      await within(
        until(() => clientErrors > 0, 5000, 'tlsClientError'),
        5000,
        'tlsClientError',
      );
    await closeServer(server);
    return error ? { failed: true, clientErrors } : { failed: false, ...client, reply, clientErrors, server: seen };
  }

  test.each([
    ['minVersion TLSv1.3, a TLS 1.2 client', { minVersion: 'TLSv1.3' }, { maxVersion: 'TLSv1.2' }],
    ['maxVersion TLSv1.2', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }, {}],
    ['ciphers: one TLS 1.2 suite', { ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305' }, { maxVersion: 'TLSv1.2' }],
    [
      'ciphers: a TLS 1.2 suite the client lacks',
      { ciphers: 'ECDHE-ECDSA-AES128-SHA256' },
      { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' },
    ],
    ['ALPNProtocols, client overlaps', { ALPNProtocols: ['h2', 'http/1.1'] }, { ALPNProtocols: ['x', 'http/1.1'] }],
    ['ALPNProtocols, client offers none', { ALPNProtocols: ['h2'] }, {}],
    ['ALPNProtocols, no overlap', { ALPNProtocols: ['h2'] }, { ALPNProtocols: ['http/1.1'] }],
    [
      'ALPNProtocols in wire format',
      { ALPNProtocols: Buffer.from('\x02h2\x08http/1.1') },
      { ALPNProtocols: ['http/1.1'] },
    ],
    ['requestCert + ca, a signed client', { requestCert: true, ca: CA.cert }, { cert: SIGNED.cert, key: SIGNED.key }],
    ['requestCert + ca, no client certificate', { requestCert: true, ca: CA.cert }, { maxVersion: 'TLSv1.2' }],
    [
      'requestCert, rejectUnauthorized false, a self-signed client',
      { requestCert: true, rejectUnauthorized: false, ca: CA.cert },
      { cert: CERT.cert, key: CERT.key },
    ],
    [
      'rejectUnauthorized false without requestCert: nothing asked',
      { rejectUnauthorized: false },
      { cert: SIGNED.cert, key: SIGNED.key },
    ],
    [
      'cert and key as Buffers, with ca as an array',
      { cert: Buffer.from(CERT.cert), key: Buffer.from(CERT.key), ca: [CA.cert] },
      {},
    ],
  ] as const)('%s', async (_what, serverOptions, clientOptions) => {
    const mine = await outcome('osc', serverOptions, clientOptions as tls.ConnectionOptions);
    const node = await outcome('node', serverOptions, clientOptions as tls.ConnectionOptions);
    expect(mine).toEqual(node);
  });
});

describe('HTTP/1.1 events of the https server', () => {
  // A raw TLS client sends `request`; the server's events and the reply's status line are compared.
  async function http(kind: 'node' | 'osc', request: string) {
    const events: string[] = [];
    const app = (req: { method?: string }, res: { end(s: string): void }) => {
      events.push(`request ${req.method}`);
      res.end('ok');
    };
    const server =
      kind === 'osc' ? createHttpsServer({ ...base, allowHTTP2: false }, app) : https.createServer({ ...base }, app);
    const s = server as unknown as net.Server;
    s.on('checkContinue', (req: { method?: string }, res: { writeContinue(): void; end(s: string): void }) => {
      events.push(`checkContinue ${req.method}`);
      res.writeContinue();
      res.end('continued');
    });
    s.on('checkExpectation', (_req: unknown, res: { statusCode: number; end(): void }) => {
      events.push('checkExpectation');
      res.statusCode = 417;
      res.end();
    });
    s.on('connect', (req: { url?: string }, socket: net.Socket) => {
      events.push(`connect ${req.url}`);
      socket.end('HTTP/1.1 200 Connection Established\r\n\r\n');
    });
    s.on('clientError', (err: { code?: string }, socket: net.Socket) => {
      events.push(`clientError ${err.code}`);
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    });
    const port = await listen(server);
    const c = tls.connect({ host: HOST, port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
    c.on('error', () => undefined);
    let reply = '';
    c.on('data', (d: Buffer) => {
      reply += d.toString();
      if (/\r\n\r\n/.test(reply) && !reply.startsWith('HTTP/1.1 100')) c.end();
      if (reply.startsWith('HTTP/1.1 100') && /continued$/.test(reply)) c.end();
    });
    await once(c, 'secureConnect');
    c.write(request);
    await within(once(c, 'close'), 5000, `${kind} reply`);
    await new Promise<void>((r) => setTimeout(r, 20));
    (server as { closeAllConnections(): void }).closeAllConnections();
    await closeServer(server);
    return { events, status: reply.split('\r\n')[0] };
  }

  test.each([
    ['GET: request', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'],
    [
      'Expect: 100-continue: checkContinue',
      'POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n',
    ],
    ['Expect: other: checkExpectation', 'GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n'],
    ['CONNECT: connect', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'],
    ['garbage: clientError', 'NOT HTTP AT ALL\r\n\r\n'],
  ])('%s', async (_what, request) => {
    const mine = await http('osc', request);
    const node = await http('node', request);
    expect(mine).toEqual(node);
    expect(mine.events.length).toBe(1);
  });
});

test('the HTTP/1.1 settings of the https server start as https.Server’s', () => {
  const settings = (s: object) => {
    const o = s as Record<string, unknown>;
    const names = ['keepAliveTimeout', 'headersTimeout', 'requestTimeout', 'maxHeadersCount', 'maxRequestsPerSocket'];
    return Object.fromEntries([...names, 'timeout'].map((n) => [n, o[n]]));
  };
  const node = https.createServer(base);
  const mine = createHttpsServer(base);
  expect(settings(mine)).toEqual(settings(node));
  expect(settings(mine)).toMatchObject({ keepAliveTimeout: 5000, headersTimeout: 60000, requestTimeout: 300000 });
  // Both are node's setTimeout: it sets `timeout` and returns the server.
  expect([node.setTimeout(1234) === node, node.timeout]).toEqual([mine.setTimeout(1234) === mine, mine.timeout]);
});

test.each([
  'keepAlive',
  'keepAliveInitialDelay',
  'noDelay',
  'allowHalfOpen',
  'pauseOnConnect',
  'blockList',
  'pfx',
  'secureOptions',
  'secureProtocol',
  'honorCipherOrder',
  'ecdhCurve',
  'dhparam',
  'sigalgs',
  'crl',
  'allowPartialTrustChain',
  'certificateCompression',
  'clientCertEngine',
  'privateKeyEngine',
  'privateKeyIdentifier',
  'pskCallback',
  'pskIdentityHint',
  'ALPNCallback',
  'enableTrace',
  'secureContext',
])('the node:tls option %s is refused by name (createServer, createHttpsServer), never ignored', (name) => {
  // Each is accepted by node's tls.createServer.
  const options = { ...base, [name]: name === 'pskCallback' || name === 'ALPNCallback' ? () => null : true };
  expect(() => createServer(options as never)).toThrow(new RegExp(`'${name}'`));
  expect(() => createServer(options as never)).toThrow(TypeError);
  expect(() => createHttpsServer(options as never)).toThrow(new RegExp(`'${name}'`));
});

test.each(['keepAliveTimeout', 'headersTimeout', 'requestTimeout'])(
  'the https.createServer option %s is refused by createHttpsServer; the property works as on https.Server',
  (name) => {
    expect(() => createHttpsServer({ ...base, [name]: 1000 } as never)).toThrow(new RegExp(`'${name}'`));
    const server = createHttpsServer(base) as unknown as Record<string, unknown>;
    server[name] = 1234;
    expect(server[name]).toBe(1234);
  },
);
