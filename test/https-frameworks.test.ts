// Real frameworks on createHttpsServer, unchanged: Express (req.secure, req.protocol, an mTLS middleware on
// req.client.authorized), Koa (ctx.secure over HTTP/1.1 and HTTP/2), Fastify (the README's serverFactory
// recipe, also with http2: true), ws (a WebSocket server, wss:// clients). Clients nobody here wrote:
// curl, node:https, node:http2, the ws client.
import { once } from 'node:events';
import type { Http2SecureServer } from 'node:http2';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';

import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { WebSocket, WebSocketServer } from 'ws';

import { HttpsServer, createHttpsServer } from '../lib';
import type { HttpsRequestListener } from '../lib';
import {
  CA,
  CA_FILE,
  CLIENT,
  HOST,
  SERVER,
  STRANGER,
  delay,
  h2Get,
  httpsGet,
  sh,
  startHttps,
  stopHttps,
  within,
} from './https-helpers';

jest.setTimeout(60000);

describe('Express', () => {
  let server: HttpsServer;
  let base: string;
  beforeAll(async () => {
    const app = express();
    app.get('/info', (req, res) => {
      res.json({ secure: req.secure, protocol: req.protocol, ip: req.ip, httpVersion: req.httpVersion });
    });
    // An mTLS middleware as written for node:https: the verdict is on req.client, the certificate on the socket.
    const requireClientCertificate: express.RequestHandler = (req, res, next) => {
      const socket = (req as unknown as { client: TLSSocket }).client;
      if (!socket.authorized) {
        res.status(401).json({ error: socket.authorizationError });
        return;
      }
      next();
    };
    app.get('/private', requireClientCertificate, (req, res) => {
      const socket = req.socket as TLSSocket;
      const peer = socket.getPeerCertificate();
      res.json({ cn: peer.subject.CN, issuer: peer.issuer.CN, reused: socket.isSessionReused() });
    });
    // Express takes no HTTP/2 (node's compatibility requests hang in it): offer HTTP/1.1 only.
    const tlsOptions = { requestCert: true, rejectUnauthorized: false, ca: CA.cert };
    ({ server, base } = await startHttps({ ...tlsOptions, allowHTTP2: false }, app));
  });
  afterAll(() => stopHttps(server));

  test('curl (which would prefer h2): HTTP/1.1, req.secure is true and req.protocol https', async () => {
    const r = await sh(`curl -sS --cacert ${CA_FILE} --http2 ${base}/info`);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ secure: true, protocol: 'https', ip: HOST, httpVersion: '1.1' });
  });

  test('mTLS: a certificate from the CA passes, and is still authorized on a resumed session', async () => {
    const agent = new https.Agent({ keepAlive: false, ca: CA.cert, cert: CLIENT.cert, key: CLIENT.key });
    try {
      const first = await httpsGet(`${base}/private`, { agent });
      expect(first.status).toBe(200);
      expect(JSON.parse(first.body)).toEqual({ cn: 'client-one', issuer: 'HTTPS test CA', reused: false });
      await delay(50); // the TLS 1.3 ticket, cached by the agent
      const second = await httpsGet(`${base}/private`, { agent });
      expect(second.reused).toBe(true);
      expect(JSON.parse(second.body)).toEqual({ cn: 'client-one', issuer: 'HTTPS test CA', reused: true });
    } finally {
      agent.destroy();
    }
  });

  test('mTLS: no certificate, or one from a stranger, gets 401 with node’s reason', async () => {
    const none = await httpsGet(`${base}/private`, { agent: false });
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body)).toEqual({ error: 'UNABLE_TO_GET_ISSUER_CERT' });
    const stranger = await httpsGet(`${base}/private`, { agent: false, cert: STRANGER.cert, key: STRANGER.key });
    expect(stranger.status).toBe(401);
    expect(JSON.parse(stranger.body)).toEqual({ error: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    const curl = await sh(`curl -sS --cacert ${CA_FILE} -o /dev/null -w '%{http_code}' ${base}/private`);
    expect(curl.stdout).toBe('401');
  });
});

describe('Koa', () => {
  let server: HttpsServer;
  let base: string;
  beforeAll(async () => {
    const app = new Koa();
    app.use((ctx) => {
      ctx.body = { secure: ctx.secure, protocol: ctx.protocol, httpVersion: ctx.req.httpVersion, ip: ctx.ip };
    });
    ({ server, base } = await startHttps({}, app.callback()));
  });
  afterAll(() => stopHttps(server));

  test.each([
    ['--http1.1', '1.1'],
    ['--http2', '2.0'],
  ])('curl %s: ctx.secure true, ctx.protocol https', async (flag, version) => {
    const r = await sh(`curl -sS --cacert ${CA_FILE} ${flag} ${base}/`);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ secure: true, protocol: 'https', httpVersion: version, ip: HOST });
  });

  test('node http2.connect: the same over HTTP/2', async () => {
    const r = await h2Get(base, '/');
    expect(JSON.parse(r.body)).toMatchObject({ secure: true, protocol: 'https', httpVersion: '2.0' });
  });
});

describe('Fastify', () => {
  const { cert, key } = SERVER;

  test('serverFactory without http2: HTTP/1.1 and HTTP/2 on one port, request.protocol https', async () => {
    // Fastify's types want an http.Server here (they accept ours with http2: true, the README's recipe).
    const fastify = Fastify({
      serverFactory: (handler) => createHttpsServer({ cert, key }, handler) as never,
    });
    fastify.get('/', async (request) => ({
      protocol: request.protocol,
      encrypted: (request.raw.socket as TLSSocket).encrypted,
      httpVersion: request.raw.httpVersion,
    }));
    await fastify.listen({ port: 0, host: HOST });
    try {
      const base = `https://${HOST}:${(fastify.server.address() as { port: number }).port}`;
      const h1 = await sh(`curl -sS --cacert ${CA_FILE} --http1.1 ${base}/`);
      expect(JSON.parse(h1.stdout)).toEqual({ protocol: 'https', encrypted: true, httpVersion: '1.1' });
      const h2 = await sh(`curl -sS --cacert ${CA_FILE} --http2 ${base}/`);
      expect(JSON.parse(h2.stdout)).toEqual({ protocol: 'https', encrypted: true, httpVersion: '2.0' });
    } finally {
      await within(fastify.close(), 10000, 'fastify close');
    }
    expect(fastify.server.listening).toBe(false);
  });

  test('the README recipe (http2: true): Fastify in HTTP/2 mode, HTTP/1.1 still served', async () => {
    // The README's recipe, as it stands there (but port 0 and 127.0.0.1).
    const fastify = Fastify<Http2SecureServer>({
      http2: true,
      serverFactory: (handler) => createHttpsServer({ cert, key }, handler),
    });
    fastify.get('/', async (request) => ({ protocol: request.protocol, httpVersion: request.raw.httpVersion }));
    await fastify.listen({ port: 0, host: HOST });
    try {
      const base = `https://${HOST}:${(fastify.server.address() as { port: number }).port}`;
      const h2 = await h2Get(base, '/');
      expect(h2.status).toBe(200);
      expect(JSON.parse(h2.body)).toEqual({ protocol: 'https', httpVersion: '2.0' });
      const h1 = await sh(`curl -sS --cacert ${CA_FILE} --http1.1 ${base}/`);
      expect(JSON.parse(h1.stdout)).toEqual({ protocol: 'https', httpVersion: '1.1' });
    } finally {
      await within(fastify.close(), 10000, 'fastify close');
    }
  });
});

describe('ws', () => {
  test('a WebSocket server on createHttpsServer: wss:// clients, echo, the upgrade request encrypted', async () => {
    const notFound: HttpsRequestListener = (req, res) => {
      res.statusCode = 404;
      res.end();
    };
    const { server, base } = await startHttps({}, notFound);
    // ws types `server` as http(s).Server; node's HTTP/2 server (ours is one) needs this cast with node's too.
    const wss = new WebSocketServer({ server: server as unknown as https.Server });
    wss.on('connection', (ws, req) => {
      const socket = req.socket as TLSSocket;
      ws.send(JSON.stringify({ encrypted: socket.encrypted, alpn: socket.alpnProtocol, url: req.url }));
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    try {
      const clients = [0, 1, 2].map((i) => new WebSocket(`${base.replace('https', 'wss')}/chat/${i}`, { ca: CA.cert }));
      const replies = await Promise.all(
        clients.map(async (ws, i) => {
          const [hello] = (await within(once(ws, 'message'), 5000, 'hello')) as [Buffer];
          const big = Buffer.alloc(200_000 + i, i);
          ws.send(big);
          const [echo] = (await within(once(ws, 'message'), 5000, 'echo')) as [Buffer];
          ws.close();
          await within(once(ws, 'close'), 5000, 'ws close');
          return { hello: JSON.parse(hello.toString()), echoed: echo.equals(big) };
        }),
      );
      replies.forEach((r, i) => {
        expect(r.hello).toEqual({ encrypted: true, alpn: false, url: `/chat/${i}` });
        expect(r.echoed).toBe(true);
      });
      // Plain HTTP on the same port still goes to the request listener.
      const r = await sh(`curl -sS --cacert ${CA_FILE} -o /dev/null -w '%{http_code}' ${base}/`);
      expect(r.stdout).toBe('404');
    } finally {
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await stopHttps(server);
    }
  });
});
