// node:http on top of the native TLS transport, driven by curl: GET, keep-alive, a 1 MiB POST echoed.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { isTLSConnection } from '../lib';
import { HOST, Started, pseudoRandom, sh, sha256, startServer, stopServer } from './server-helpers';

jest.setTimeout(60000);

let s: Started | undefined;
let app: http.Server;
let dir: string;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'osc-http-'));
  app = http.createServer((req, res) => {
    // node types req.socket as a net.Socket: the guard gives back the TLSConnection (as the README shows).
    const sock = req.socket;
    if (!isTLSConnection(sock)) return void res.writeHead(500).end('req.socket is not a TLSConnection\n');
    const session = sock.session;
    if (req.method === 'POST') {
      // Echo the body back, and say what we received.
      const h = createHash('sha256');
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => {
        h.update(d);
        chunks.push(d);
      });
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'x-received-sha256': h.digest('hex'),
          'x-received-length': String(body.length),
        });
        res.end(body);
      });
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        url: req.url,
        encrypted: sock.encrypted,
        remotePort: sock.remotePort,
        protocol: session?.protocol,
        alpn: session?.alpn,
        id: session?.id,
        reused: session?.reused,
      }) + '\n',
    );
  });
  s = await startServer({ ALPNProtocols: ['http/1.1'] }, (conn) => app.emit('connection', conn));
  base = `https://${HOST}:${s.port}`;
});

afterAll(async () => {
  await stopServer(s?.server);
  app.close();
  rmSync(dir, { recursive: true, force: true });
});

test('curl GET: a response over the native transport, the TLS session visible on req.socket', async () => {
  const before = s!.server.stats().accepted;
  const r = await sh(`curl -sS -k --http1.1 ${base}/hello`, 20000);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const body = JSON.parse(r.stdout);
  expect(body.url).toBe('/hello');
  expect(body.encrypted).toBe(true);
  expect(body.alpn).toBe('http/1.1');
  expect(['TLSv1.2', 'TLSv1.3']).toContain(body.protocol);
  expect(body.id).toMatch(/^[0-9a-f]{64}$/);
  expect(body.reused).toBe(false);
  expect(s!.server.stats().accepted).toBe(before + 1);
});

test('curl keep-alive: two requests on one connection', async () => {
  const before = s!.server.stats().accepted;
  const r = await sh(
    `curl -sS -k --http1.1 -w 'connects=%{num_connects} code=%{http_code}\\n' ${base}/one ${base}/two`,
    20000,
  );
  expect(r.code).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines).toHaveLength(4);
  const one = JSON.parse(lines[0]);
  const two = JSON.parse(lines[2]);
  expect(one.url).toBe('/one');
  expect(two.url).toBe('/two');
  expect(lines[1]).toBe('connects=1 code=200');
  expect(lines[3]).toBe('connects=0 code=200');
  // Same TCP connection, same TLS session, one accept.
  expect(two.remotePort).toBe(one.remotePort);
  expect(two.id).toBe(one.id);
  expect(s!.server.stats().accepted).toBe(before + 1);
});

test('curl POST of 1 MiB: echoed back byte for byte', async () => {
  const data = pseudoRandom(1024 * 1024 + 17, 42);
  const input = path.join(dir, 'in.bin');
  const output = path.join(dir, 'out.bin');
  const headers = path.join(dir, 'headers.txt');
  writeFileSync(input, data);
  const r = await sh(
    `curl -sS -k --http1.1 -H 'content-type: application/octet-stream' --data-binary @${input} ` +
      `-D ${headers} -o ${output} -w '%{http_code}' ${base}/echo`,
    30000,
  );
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toBe('200');
  const hdr = readFileSync(headers, 'latin1').toLowerCase();
  expect(hdr).toContain(`x-received-length: ${data.length}`);
  expect(hdr).toContain(`x-received-sha256: ${sha256(data)}`);
  const echoed = readFileSync(output);
  expect(echoed.length).toBe(data.length);
  expect(sha256(echoed)).toBe(sha256(data));
});

test('isTLSConnection: true only for a TLSConnection', () => {
  expect(isTLSConnection(s!.connections[0])).toBe(true);
  const plain = new net.Socket();
  expect(isTLSConnection(plain)).toBe(false);
  plain.destroy();
  for (const other of [null, undefined, {}, { session: null, encrypted: true }, 'socket']) {
    expect(isTLSConnection(other)).toBe(false);
  }
});

test('the server counted every curl handshake, none failed', () => {
  const st = s!.server.stats();
  expect(st.handshakes).toBe(st.accepted);
  expect(st.handshakeFailures).toBe(0);
});
