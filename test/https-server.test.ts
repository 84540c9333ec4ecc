// createHttpsServer: HTTP/1.1 and HTTP/2 on one port by ALPN, node's allowHTTP1 semantics (compared with
// http2.createSecureServer for the same clients), the TLS facts on requests and sessions, resumption over
// HTTP, and the server's life cycle (listen, close of idle keep-alive connections, timeouts).
import { once } from 'node:events';
import http, { IncomingMessage } from 'node:http';
import http2, { Http2ServerRequest, Http2Session } from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';

import { HttpsServer, SecureContext, TLSConnection, TLSError, createHttpsServer, generateCertificate } from '../lib';
import type { HttpsRequestListener } from '../lib';
import {
  CA,
  CA_FILE,
  CLIENT,
  HOST,
  SERVER,
  delay,
  h2Get,
  httpsGet,
  sh,
  startHttps,
  stopHttps,
  until,
  within,
} from './https-helpers';

jest.setTimeout(60000);

/** What a request saw of its connection, as the handler below reports it. */
interface Seen {
  httpVersion: string;
  encrypted: unknown;
  alpn: unknown;
  remoteAddress: unknown;
  remoteFamily: unknown;
  protocol: unknown;
  cipher: unknown;
  reused: unknown;
  authorized: unknown;
  sessionEncrypted?: unknown;
  sessionAlpn?: unknown;
}

const report: HttpsRequestListener = (req, res) => {
  const socket = req.socket as unknown as tls.TLSSocket;
  const session = (req as Http2ServerRequest).stream?.session;
  const seen: Seen = {
    httpVersion: req.httpVersion,
    encrypted: socket.encrypted,
    alpn: socket.alpnProtocol,
    remoteAddress: socket.remoteAddress,
    remoteFamily: socket.remoteFamily,
    protocol: socket.getProtocol(),
    cipher: socket.getCipher()?.name,
    reused: socket.isSessionReused(),
    authorized: socket.authorized,
    ...(session ? { sessionEncrypted: session.encrypted, sessionAlpn: session.alpnProtocol } : {}),
  };
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(seen));
};

describe('one port, both protocols (allowHTTP1 by default)', () => {
  let server: HttpsServer;
  let base: string;
  let port: number;
  beforeAll(async () => {
    ({ server, base, port } = await startHttps({}, report));
  });
  afterAll(() => stopHttps(server));

  test('curl --http2 verifying the chain: HTTP/2 over h2, the session encrypted and named h2', async () => {
    const r = await sh(`curl -sS --cacert ${CA_FILE} --http2 -w '\\n%{http_version}' ${base}/`);
    expect(r.stderr).toBe('');
    const [body, version] = r.stdout.split('\n');
    expect(version).toBe('2');
    const seen = JSON.parse(body) as Seen;
    expect(seen).toMatchObject({
      httpVersion: '2.0',
      encrypted: true,
      alpn: 'h2',
      sessionEncrypted: true,
      sessionAlpn: 'h2',
      remoteAddress: HOST,
      remoteFamily: 'IPv4',
      reused: false,
      authorized: false,
    });
    expect(['TLSv1.2', 'TLSv1.3']).toContain(seen.protocol);
    expect(typeof seen.cipher).toBe('string');
  });

  test('curl --http1.1: HTTP/1.1 over http/1.1 on the same port', async () => {
    const r = await sh(`curl -sS --cacert ${CA_FILE} --http1.1 -w '\\n%{http_version}' ${base}/`);
    expect(r.stderr).toBe('');
    const [body, version] = r.stdout.split('\n');
    expect(version).toBe('1.1');
    expect(JSON.parse(body)).toMatchObject({ httpVersion: '1.1', encrypted: true, alpn: 'http/1.1' });
  });

  test('curl -k against localhost: the certificate is not checked, the answer is the same', async () => {
    const r = await sh(`curl -sS -k --http2 https://localhost:${port}/`);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toMatchObject({ httpVersion: '2.0', encrypted: true, alpn: 'h2' });
  });

  test('node:https without ALPN: served as HTTP/1.1, alpnProtocol false on both sides', async () => {
    const r = await httpsGet(`${base}/plain`, { agent: false });
    expect(r.status).toBe(200);
    expect(r.alpn).toBe(false);
    expect(JSON.parse(r.body)).toMatchObject({ httpVersion: '1.1', encrypted: true, alpn: false });
  });

  test('node http2.connect: the client negotiates h2 and the server session says encrypted h2', async () => {
    const r = await h2Get(base, '/h2');
    expect(r.status).toBe(200);
    expect(r.alpn).toBe('h2');
    expect(JSON.parse(r.body)).toMatchObject({
      httpVersion: '2.0',
      encrypted: true,
      alpn: 'h2',
      sessionEncrypted: true,
      sessionAlpn: 'h2',
    });
  });

  test('the session event sees encrypted, alpnProtocol and the TLS surface on session.socket', async () => {
    const seen = new Promise<Record<string, unknown>>((resolve) =>
      server.once('session', (session: Http2Session) => {
        const socket = session.socket as tls.TLSSocket;
        resolve({
          encrypted: session.encrypted,
          alpn: session.alpnProtocol,
          socketEncrypted: socket.encrypted,
          servername: socket.servername,
          remotePort: socket.remotePort,
          localPort: socket.localPort,
          address: socket.address(),
        });
      }),
    );
    await h2Get(base, '/', { servername: 'localhost' });
    const s = await within(seen, 5000, 'session');
    expect(s).toMatchObject({ encrypted: true, alpn: 'h2', socketEncrypted: true, servername: 'localhost' });
    expect(s.localPort).toBe(port);
    expect(s.address).toMatchObject({ address: HOST, port, family: 'IPv4' });
    expect(typeof s.remotePort).toBe('number');
  });

  test('resumption over HTTP/1.1: an https.Agent reuses its TLS session on a new connection', async () => {
    const agent = new https.Agent({ keepAlive: false, maxCachedSessions: 10, ca: CA.cert });
    try {
      const before = server.tlsServer.stats().resumed;
      const first = await httpsGet(`${base}/a`, { agent });
      expect(first.reused).toBe(false);
      // TLS 1.3 tickets arrive after the handshake; the agent caches one on the socket's 'session' event.
      await delay(50);
      const second = await httpsGet(`${base}/b`, { agent });
      expect(second.reused).toBe(true);
      expect(JSON.parse(second.body)).toMatchObject({ httpVersion: '1.1', reused: true });
      expect(server.tlsServer.stats().resumed).toBe(before + 1);
    } finally {
      agent.destroy();
    }
  });

  test.each(['TLSv1.2', 'TLSv1.3'] as const)('resumption over HTTP/2 (%s): the second session resumes', async (v) => {
    const versions = { minVersion: v, maxVersion: v };
    const first = await h2Get(base, '/one', versions);
    expect(first.reused).toBe(false);
    expect(first.tlsSession).toBeDefined();
    const second = await h2Get(base, '/two', { ...versions, session: first.tlsSession });
    expect(second.reused).toBe(true);
    expect(JSON.parse(second.body)).toMatchObject({ httpVersion: '2.0', protocol: v, reused: true, encrypted: true });
  });

  test('keep-alive: two HTTP/1.1 requests on one connection, and several HTTP/2 streams on one session', async () => {
    const r = await sh(`curl -sS --cacert ${CA_FILE} --http1.1 -w ' connects=%{num_connects}\\n' ${base}/1 ${base}/2`);
    expect(r.stdout).toMatch(/connects=1\n.*connects=0\n$/s);
    const client = http2.connect(base, { ca: CA.cert });
    try {
      const bodies = await Promise.all(
        ['/x', '/y', '/z'].map(
          (p) =>
            new Promise<string>((resolve, reject) => {
              const req = client.request({ ':path': p });
              let body = '';
              req.setEncoding('utf8');
              req.on('data', (d: string) => (body += d));
              req.on('end', () => resolve(body));
              req.on('error', reject);
            }),
        ),
      );
      for (const b of bodies) expect(JSON.parse(b)).toMatchObject({ httpVersion: '2.0', encrypted: true });
    } finally {
      client.close();
    }
  });

  test('a client offering only an unknown protocol is refused in the handshake (tlsClientError)', async () => {
    const failed = new Promise<[TLSError, { remoteAddress: string }]>((resolve) =>
      server.once('tlsClientError', (err: TLSError, client: { remoteAddress: string }) => resolve([err, client])),
    );
    const err = await new Promise<Error>((resolve) => {
      const s = tls.connect({ host: HOST, port, ca: CA.cert, ALPNProtocols: ['spdy/3'] }, () =>
        resolve(new Error('connected')),
      );
      s.on('error', resolve);
    });
    expect(err.message).toMatch(/no application protocol|alert/i);
    const [serverErr, client] = await within(failed, 5000, 'tlsClientError');
    expect(serverErr.code).toBe('ERR_OSC_HANDSHAKE');
    expect(client.remoteAddress).toBe(HOST);
  });
});

/** The same raw clients against node's http2.createSecureServer and ours, compared. */
describe('allowHTTP1 semantics, compared with node:http2', () => {
  const serve: HttpsRequestListener = (req, res) => res.end(`HTTP/${req.httpVersion}`);

  async function nodeServer(allowHTTP1: boolean): Promise<{ close: () => Promise<void>; port: number }> {
    // unknownProtocolTimeout: node's server keeps a refused socket that long, and its close() waits for it
    const s = http2.createSecureServer(
      { cert: SERVER.cert, key: SERVER.key, allowHTTP1, unknownProtocolTimeout: 500 },
      serve,
    );
    await new Promise<void>((r) => s.listen(0, HOST, r));
    return {
      port: (s.address() as net.AddressInfo).port,
      close: () => new Promise<void>((r) => s.close(() => r())),
    };
  }

  /** A raw TLS client: what ALPN it got (or the handshake error), and what the server sent to "GET /". */
  async function probe(port: number, ALPNProtocols?: string[]): Promise<string> {
    return within(
      new Promise<string>((resolve) => {
        let out = '';
        const s = tls.connect({ host: HOST, port, ca: CA.cert, ...(ALPNProtocols ? { ALPNProtocols } : {}) }, () => {
          out += `alpn=${String(s.alpnProtocol)} `;
          s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
        });
        s.setEncoding('utf8');
        s.on('data', (d: string) => (out += d));
        s.on('error', (e: Error & { code?: string }) => (out += `error=${e.code}`));
        s.on('close', () => resolve(out.replace(/\r\nDate: [^\r]*/, '')));
      }),
      10000,
      'probe',
    );
  }

  test.each([true, false])(
    'allowHTTP1 %s: the same answers as node for h2, http/1.1 and no ALPN',
    async (allowHTTP1) => {
      const theirs = await nodeServer(allowHTTP1);
      const ours = await startHttps({ allowHTTP1 }, serve);
      try {
        for (const offer of [undefined, ['http/1.1'], ['http/1.1', 'h2']]) {
          const a = await probe(theirs.port, offer);
          const b = await probe(ours.port, offer);
          expect(b).toBe(a);
        }
        // The answers themselves, so that a change in node's would show here.
        const noAlpn = await probe(ours.port);
        if (allowHTTP1) expect(noAlpn).toMatch(/^alpn=false HTTP\/1.1 200 OK.*HTTP\/1.1$/s);
        else expect(noAlpn).toMatch(/^alpn=false HTTP\/1.0 403 Forbidden.*Missing ALPN Protocol/s);
        const onlyHttp1 = await probe(ours.port, ['http/1.1']);
        if (allowHTTP1) expect(onlyHttp1).toMatch(/^alpn=http\/1.1 HTTP\/1.1 200 OK/);
        else expect(onlyHttp1).toMatch(/^error=ECONNRESET$|no_application_protocol|^error=ERR_SSL/);
      } finally {
        await theirs.close();
        await stopHttps(ours.server);
      }
    },
  );

  test('allowHTTP1 false: curl --http1.1 is refused, curl --http2 served; unknownProtocol gets the socket', async () => {
    const { server, base, port } = await startHttps({ allowHTTP1: false }, serve);
    try {
      const h2 = await sh(`curl -sS --cacert ${CA_FILE} --http2 ${base}/`);
      expect(h2.stdout).toBe('HTTP/2.0');
      const h1 = await sh(`curl -sS --cacert ${CA_FILE} --http1.1 ${base}/`);
      expect(h1.code).not.toBe(0);
      expect(h1.stderr).toMatch(/alert|no application protocol|SSL/i);
      const unknown = new Promise<TLSConnection>((resolve) =>
        server.once('unknownProtocol', (socket: TLSConnection) => {
          socket.end('not here\n');
          resolve(socket);
        }),
      );
      const answer = await probe(port);
      const socket = await within(unknown, 5000, 'unknownProtocol');
      expect(socket).toBeInstanceOf(TLSConnection);
      expect(socket.encrypted).toBe(true);
      expect(answer).toBe('alpn=false not here\n');
    } finally {
      await stopHttps(server);
    }
  });
});

test('allowHTTP2 false: only http/1.1 is offered; curl --http2 falls back, an h2-only client is refused', async () => {
  const { server, base, port } = await startHttps({ allowHTTP2: false }, report);
  try {
    const r = await sh(`curl -sS --cacert ${CA_FILE} --http2 -w '\n%{http_version}' ${base}/`);
    const [body, version] = r.stdout.split('\n');
    expect(version).toBe('1.1');
    expect(JSON.parse(body)).toMatchObject({ httpVersion: '1.1', encrypted: true, alpn: 'http/1.1' });
    const err = await new Promise<Error | null>((resolve) => {
      const s = tls.connect({ host: HOST, port, ca: CA.cert, ALPNProtocols: ['h2'] }, () => resolve(null));
      s.on('error', resolve);
    });
    expect(err?.message).toMatch(/no application protocol/i);
  } finally {
    await stopHttps(server);
  }
});

describe('the server object', () => {
  test('is node’s HTTP/2 server: request listener, the events, settings, setTimeout', async () => {
    const server = createHttpsServer({ cert: SERVER.cert, key: SERVER.key });
    expect(server).toBeInstanceOf(tls.Server);
    expect(typeof server.updateSettings).toBe('function');
    expect(server.setTimeout(1000)).toBe(server);
    expect(server.timeout).toBe(1000);
    expect(server.listening).toBe(false);
    expect(server.address()).toBeNull();
    expect(server.tlsServer.context.stats().number).toBe(0);
    const closeErr = await new Promise<Error | undefined>((resolve) => server.close(resolve));
    expect(closeErr).toMatchObject({ code: 'ERR_SERVER_NOT_RUNNING' });
  });

  test('listen variants, getConnections, ref/unref; close fires once the connections are gone', async () => {
    const { server, base } = await startHttps({}, (req, res) => res.end('ok'));
    expect(server.listening).toBe(true);
    expect(server.ref()).toBe(server);
    expect(server.unref()).toBe(server);
    server.ref();
    const client = http2.connect(base, { ca: CA.cert });
    await once(client, 'connect');
    const count = await new Promise<number>((resolve) => server.getConnections((_e, n) => resolve(n)));
    expect(count).toBe(1);
    let closed = 0;
    server.on('close', () => closed++);
    const done = new Promise<Error | undefined>((resolve) => server.close(resolve));
    expect(server.listening).toBe(false);
    await delay(100);
    expect(closed).toBe(0); // the HTTP/2 session is still open (node 20, 22) or being closed (node 24)
    client.close();
    expect(await within(done, 5000, 'close')).toBeUndefined();
    await delay(50);
    expect(closed).toBe(1);
    // A closed server listens again, with an options object, and ignores keys frameworks add, as node.
    await new Promise<void>((resolve) =>
      server.listen({ port: 0, host: HOST, cb: () => undefined } as unknown as net.ListenOptions, resolve),
    );
    expect(server.address()!.port).toBeGreaterThan(0);
    expect(() => server.listen(0)).toThrow(expect.objectContaining({ code: 'ERR_SERVER_ALREADY_LISTEN' }));
    await stopHttps(server);
  });

  test('close() closes idle HTTP/1.1 keep-alive connections at once, as node 19+ https.Server', async () => {
    const { server, base } = await startHttps({}, (req, res) => res.end('ok'));
    const agent = new https.Agent({ keepAlive: true, ca: CA.cert });
    try {
      const r = await httpsGet(`${base}/`, { agent });
      expect(r.body).toBe('ok');
      const socketClosed = once(r.socket, 'close');
      const t0 = Date.now();
      await within(new Promise<void>((resolve) => server.close(() => resolve())), 5000, 'close');
      await within(socketClosed, 5000, 'the idle socket closed');
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      agent.destroy();
    }
  });

  test('keepAliveTimeout closes an idle HTTP/1.1 connection, server.setTimeout an idle HTTP/2 session', async () => {
    const { server, base, port } = await startHttps({}, (req, res) => res.end('ok'));
    try {
      expect(server.keepAliveTimeout).toBe(5000); // https.Server's default
      server.keepAliveTimeout = 300;
      // A raw client (node's Agent closes idle sockets itself ahead of the server's Keep-Alive hint).
      const socket = tls.connect({ host: HOST, port, ca: CA.cert });
      await within(once(socket, 'secureConnect'), 5000, 'connect');
      socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      let answer = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (answer += d));
      await until(() => answer.endsWith('ok'), 5000, 'the response');
      const t0 = Date.now();
      await within(once(socket, 'close'), 5000, 'keep-alive timeout');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
      expect(answer).toMatch(/Keep-Alive: timeout=0/i);

      let timedOut = 0;
      // node passes the timed-out session (its typings say nothing)
      server.setTimeout(300, ((session: Http2Session) => {
        timedOut++;
        session.destroy();
      }) as () => void);
      const client = http2.connect(base, { ca: CA.cert });
      client.on('error', () => undefined);
      await once(client, 'connect');
      await within(once(client, 'close'), 5000, 'session timeout');
      expect(timedOut).toBe(1);
    } finally {
      await stopHttps(server);
    }
  });

  test('options are checked: ALPNProtocols, allowHTTP1, unknown and unsupported keys; TLS methods refused', () => {
    const { cert, key } = SERVER;
    expect(() => createHttpsServer({ cert, key, ALPNProtocols: ['h2'] } as never)).toThrow(/ALPNProtocols/);
    expect(() => createHttpsServer({ cert, key, allowHTTP1: 'yes' } as never)).toThrow(TypeError);
    expect(() => createHttpsServer({ cert, key, allowHTTP1: false, allowHTTP2: false })).toThrow(RangeError);
    expect(() => createHttpsServer({ cert, key, allowHttp1: true } as never)).toThrow(/unknown option 'allowHttp1'/);
    expect(() => createHttpsServer({ cert, key }, 'app' as never)).toThrow(TypeError);
    expect(() => createHttpsServer(null as never)).toThrow(TypeError);
    expect(() => createHttpsServer({ key })).toThrow(TypeError);
    const server = createHttpsServer({ cert, key, settings: { maxConcurrentStreams: 10 }, maxConnections: 5 });
    expect(server.maxConnections).toBe(5);
    expect(() => server.setSecureContext({})).toThrow(/not supported/);
    expect(server.getTicketKeys()).toHaveLength(48);
    expect(() => server.listen({ path: '/tmp/x.sock' } as never)).toThrow(TypeError);
    expect(server.listening).toBe(false);
  });

  test("the TLS side of node's server: addContext (SNI), SNICallback, keylog, ticket keys", async () => {
    const named = generateCertificate({ commonName: 'named.test', altNames: ['named.test'], issuer: CA });
    const asked: string[] = [];
    const { server, base } = await startHttps(
      {
        tickets: true,
        SNICallback: (name, cb) => {
          asked.push(name);
          cb(
            null,
            name === 'cb.test'
              ? new SecureContext(generateCertificate({ commonName: 'cb.test', altNames: ['cb.test'] }))
              : null,
          );
        },
      },
      (req, res) => res.end((req.socket as unknown as tls.TLSSocket).servername || 'none'),
    );
    try {
      const lines: Buffer[] = [];
      server.on('keylog', (line, conn) => {
        expect(conn).toBeInstanceOf(TLSConnection);
        lines.push(line);
      });
      // SNICallback decides when given (as node); addContext names then stay unused, so ask both ways.
      const viaCb = await h2Get(base, '/', { servername: 'cb.test', rejectUnauthorized: false });
      expect(viaCb.body).toBe('cb.test');
      expect(asked).toEqual(['cb.test']);
      expect(lines.length).toBe(5); // TLS 1.3: five secrets, forwarded from the native server
      const key = Buffer.alloc(48, 7);
      server.setTicketKeys(key);
      expect(server.getTicketKeys()).toEqual(key);
    } finally {
      await stopHttps(server);
    }
    const plain = await startHttps({}, (req, res) =>
      res.end((req.socket as unknown as tls.TLSSocket).servername || 'none'),
    );
    try {
      plain.server.addContext('named.test', { cert: named.cert, key: named.key });
      const got = await httpsGet(`${plain.base}/`, { servername: 'named.test' });
      expect(got.body).toBe('named.test');
      expect(got.socket.getPeerX509Certificate()?.subject).toContain('named.test');
    } finally {
      await stopHttps(plain.server);
    }
  });

  test('an aborted signal closes the server, as net.Server', async () => {
    const { server } = await startHttps({}, (req, res) => res.end('ok'));
    await stopHttps(server);
    const ac = new AbortController();
    await new Promise<void>((resolve) => server.listen({ port: 0, host: HOST, signal: ac.signal }, resolve));
    const closed = once(server, 'close');
    ac.abort();
    await within(closed, 5000, 'close on abort');
    expect(server.listening).toBe(false);
  });

  test('a client certificate over HTTP/2: req.socket.authorized and getPeerCertificate() on the wrapper', async () => {
    const { server, base } = await startHttps(
      { requestCert: true, rejectUnauthorized: false, ca: CA.cert },
      (req, res) => {
        const s = req.socket as unknown as tls.TLSSocket;
        res.end(JSON.stringify({ authorized: s.authorized, cn: s.getPeerCertificate().subject?.CN ?? null }));
      },
    );
    try {
      const a = await h2Get(base, '/', { cert: CLIENT.cert, key: CLIENT.key });
      expect(JSON.parse(a.body)).toEqual({ authorized: true, cn: 'client-one' });
      const b = await h2Get(base, '/');
      expect(JSON.parse(b.body)).toEqual({ authorized: false, cn: null });
    } finally {
      await stopHttps(server);
    }
  });

  test('HTTP/1.1 requests get node’s IncomingMessage on a TLSConnection', async () => {
    let req: IncomingMessage | undefined;
    const { server, base } = await startHttps({}, (r, res) => {
      req = r as IncomingMessage;
      res.end();
    });
    try {
      await httpsGet(`${base}/`, { agent: false });
      expect(req).toBeInstanceOf(http.IncomingMessage);
      expect(req!.socket).toBeInstanceOf(TLSConnection);
      await until(() => server.tlsServer.stats().connections === 0, 5000, 'connection closed');
    } finally {
      await stopHttps(server);
    }
  });
});
