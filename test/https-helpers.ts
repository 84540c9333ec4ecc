// Helpers of the createHttpsServer tests: a CA and a server certificate from it, written to files for
// curl; starting and stopping an HttpsServer; small HTTP/1.1 and HTTP/2 clients that say what happened.
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';

import { HttpsServer, createHttpsServer, generateCertificate } from '../lib';
import type { HttpsRequestListener, HttpsServerOptions } from '../lib';
import { HOST, within } from './helpers';

export { HOST, delay, sh, until, within } from './helpers';

export const CA = generateCertificate({ isCA: true, commonName: 'HTTPS test CA' });
/** The server's certificate, for localhost, 127.0.0.1 and ::1, issued by {@link CA}. */
export const SERVER = generateCertificate({ commonName: 'localhost', issuer: CA });
/** A client certificate from the same CA, and one from nobody the server trusts. */
export const CLIENT = generateCertificate({ commonName: 'client-one', issuer: CA, altNames: ['client.example'] });
export const STRANGER = generateCertificate({ commonName: 'stranger' });

const dir = mkdtempSync(path.join(tmpdir(), 'osc-https-'));
/** The CA in a file, for `curl --cacert`. */
export const CA_FILE = path.join(dir, 'ca.pem');
writeFileSync(CA_FILE, CA.cert);

/** createHttpsServer with {@link SERVER}'s certificate, listening on 127.0.0.1 with a free port. */
export async function startHttps(
  options: HttpsServerOptions = {},
  listener?: HttpsRequestListener,
): Promise<{ server: HttpsServer; port: number; base: string }> {
  const server = createHttpsServer({ cert: SERVER.cert, key: SERVER.key, ...options }, listener);
  await within(
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, HOST, () => {
        server.off('error', reject);
        resolve();
      });
    }),
    5000,
    'listening',
  );
  const port = server.address()!.port;
  return { server, port, base: `https://${HOST}:${port}` };
}

/** Closes the server, destroying what is still open, and waits for 'close'. */
export async function stopHttps(server: HttpsServer | undefined): Promise<void> {
  if (!server) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await within(closed, 10000, 'server close');
}

export interface Reply {
  status: number;
  headers: Record<string, unknown>;
  body: string;
}

/** One HTTP/1.1 request with node:https (which offers no ALPN); the socket's TLS facts too. */
export function httpsGet(
  url: string,
  options: https.RequestOptions = {},
): Promise<Reply & { alpn: string | false | null; reused: boolean; socket: tls.TLSSocket }> {
  return within(
    new Promise((resolve, reject) => {
      const req = https.get(url, { ca: CA.cert, ...options }, (res) => {
        const socket = res.socket as tls.TLSSocket;
        const alpn = socket.alpnProtocol ?? null;
        const reused = socket.isSessionReused();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, alpn, reused, socket }));
      });
      req.on('error', reject);
    }),
    10000,
    `GET ${url}`,
  );
}

/** One HTTP/2 request with node's http2 client; `session` resumes a TLS session. */
export async function h2Get(
  base: string,
  pathname: string,
  options: http2.SecureClientSessionOptions = {},
): Promise<Reply & { alpn: string | undefined; reused: boolean; tlsSession: Buffer | undefined }> {
  const client = http2.connect(base, { ca: CA.cert, ...options });
  try {
    let tlsSession: Buffer | undefined;
    const sawTicket = new Promise<void>((resolve) => {
      (client.socket as tls.TLSSocket).on('session', (s: Buffer) => {
        tlsSession = s;
        resolve();
      });
    });
    await within(once(client, 'connect'), 5000, 'h2 connect');
    const req = client.request({ ':path': pathname });
    req.setEncoding('utf8');
    let body = '';
    req.on('data', (d: string) => (body += d));
    const [headers] = (await within(once(req, 'response'), 5000, 'h2 response')) as [http2.IncomingHttpHeaders];
    await within(once(req, 'end'), 5000, 'h2 body');
    const reused = (client.socket as tls.TLSSocket).isSessionReused();
    // A new session comes with a session (TLS 1.2: during the handshake; 1.3: a ticket after it).
    if (!reused) await within(sawTicket, 5000, 'a session ticket');
    return { status: Number(headers[':status']), headers, body, alpn: client.alpnProtocol, reused, tlsSession };
  } finally {
    client.close();
  }
}
