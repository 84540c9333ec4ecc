// ticketKeys / getTicketKeys / setTicketKeys for `tickets: true`: node:tls's 48-byte layout and ticket
// format, rotation, and the same keys in every thread of a shared context.
import { createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import tls from 'node:tls';
import { Worker } from 'node:worker_threads';

import { SecureContext } from '../lib';
import { CERT, HOST, echo, useServerFixture, visit, within } from './server-helpers';

const fx = useServerFixture();
const VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;

/** The key name a ticket starts with is the first 16 bytes of the key: the session carries the ticket. */
const issuedWith = (session: Buffer, keys: Buffer) => session.includes(keys.subarray(0, 16));

/** One DER element at `at`: its tag and where its value starts and ends. */
function der(b: Buffer, at: number): { tag: number; start: number; end: number } {
  let len = b[at + 1];
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = b.readUIntBE(start, n);
    start += n;
  }
  return { tag: b[at], start, end: start + len };
}

/**
 * The session id context sealed inside the node-format ticket a client session carries (the ticket is a DER
 * OCTET STRING starting with the key name; name, IV, AES-128-CBC ciphertext of the SSL_SESSION, HMAC-SHA256).
 */
function ticketSessionIdContext(session: Buffer, keys: Buffer): Buffer {
  const at = session.indexOf(keys.subarray(0, 16));
  const len = session[at - 3] === 0x04 && session[at - 2] === 0x81 ? session[at - 1] : session.readUInt16BE(at - 2);
  const ticket = session.subarray(at, at + len);
  const mac = createHmac('sha256', keys.subarray(16, 32))
    .update(ticket.subarray(0, len - 32))
    .digest();
  if (!mac.equals(ticket.subarray(len - 32))) throw new Error('ticket HMAC mismatch');
  const d = createDecipheriv('aes-128-cbc', keys.subarray(32, 48), ticket.subarray(16, 32));
  const sess = Buffer.concat([d.update(ticket.subarray(32, len - 32)), d.final()]);
  // SSL_SESSION ::= SEQUENCE { ..., sid_ctx [4] EXPLICIT OCTET STRING OPTIONAL, ... }
  const seq = der(sess, 0);
  for (let i = seq.start; i < seq.end; i = der(sess, i).end) {
    const el = der(sess, i);
    if (el.tag === 0xa4) {
      const inner = der(sess, el.start);
      return sess.subarray(inner.start, inner.end);
    }
  }
  return Buffer.alloc(0);
}

/**
 * The session id context a node:tls server that binds sessions to the server name gives each connection:
 * SHA-256 over its sessionIdContext, a zero byte and the client's SNI name as sent ("" without SNI).
 */
const nameBound = (sessionIdContext: string, servername: string) =>
  createHash('sha256').update(`${sessionIdContext}\0${servername}`).digest();

/** Node.js releases measured here, and whether their node:tls servers bind sessions to the server name. */
const BINDS_SESSIONS_TO_SERVER_NAME: Record<string, boolean> = {
  'v20.20.2': false,
  'v22.23.5': true,
  'v24.22.3': true,
};

describe('ticket keys', () => {
  test.each(VERSIONS)("%s: two servers with the same ticketKeys resume each other's tickets", async (v) => {
    const ticketKeys = randomBytes(48);
    const a = await fx.start({ tickets: true, ticketKeys }, echo);
    const b = await fx.start({ tickets: true, ticketKeys }, echo);
    const first = await visit(a.port, v);
    expect(first.reused).toBe(false);
    expect(issuedWith(first.session, ticketKeys)).toBe(true);
    const there = await visit(b.port, v, first.session);
    expect(there.reused).toBe(true);
    const back = await visit(a.port, v, there.session);
    expect(back.reused).toBe(true);
    // Stateless: nothing went into either cache.
    expect(a.server.context.stats().number + b.server.context.stats().number).toBe(0);
  });

  test.each(VERSIONS)('%s: a ticket under an unknown key is a full handshake, not an error', async (v) => {
    const a = await fx.start({ tickets: true, ticketKeys: randomBytes(48) }, echo);
    const b = await fx.start({ tickets: true, ticketKeys: randomBytes(48) }, echo);
    const errors: Error[] = [];
    b.server.on('tlsClientError', (err) => errors.push(err));
    const first = await visit(a.port, v);
    const there = await visit(b.port, v, first.session);
    expect(there.reused).toBe(false);
    expect(errors).toEqual([]);
  });

  test.each(VERSIONS)('%s: after setTicketKeys old tickets resume and are renewed under the new key', async (v) => {
    const k1 = randomBytes(48);
    const k2 = randomBytes(48);
    const { server, port } = await fx.start({ tickets: true, ticketKeys: k1 }, echo);
    const old = await visit(port, v);
    expect(issuedWith(old.session, k1)).toBe(true);
    server.setTicketKeys(k2);
    expect(server.getTicketKeys().equals(k2)).toBe(true);
    const renewed = await visit(port, v, old.session);
    expect(renewed.reused).toBe(true);
    expect(issuedWith(renewed.session, k2)).toBe(true);
    // The renewed ticket resumes where only the new key is known.
    const only2 = await fx.start({ tickets: true, ticketKeys: k2 }, echo);
    expect((await visit(only2.port, v, renewed.session)).reused).toBe(true);
    // Two replaced keys are kept: a third rotation retires k1.
    server.setTicketKeys(randomBytes(48));
    expect((await visit(port, v, old.session)).reused).toBe(true);
    server.setTicketKeys(randomBytes(48));
    expect((await visit(port, v, old.session)).reused).toBe(false);
  });

  test('a replaced key decrypts for one session lifetime (sessionTimeout) after it was replaced', async () => {
    // Tickets issued with a 60 s lifetime; then the lifetime drops to 1 s, which bounds the old key.
    const rotated = await fx.start({ tickets: true, ticketKeys: randomBytes(48), sessionTimeout: 60 }, echo);
    const control = await fx.start({ tickets: true, ticketKeys: randomBytes(48), sessionTimeout: 60 }, echo);
    const old = await visit(rotated.port, 'TLSv1.2');
    const kept = await visit(control.port, 'TLSv1.2');
    rotated.server.context.sessionTimeout = 1;
    control.server.context.sessionTimeout = 1;
    rotated.server.setTicketKeys(randomBytes(48));
    expect((await visit(rotated.port, 'TLSv1.2', old.session)).reused).toBe(true);
    await new Promise((r) => setTimeout(r, 2100));
    rotated.server.setTicketKeys(rotated.server.getTicketKeys()); // the same key again: no rotation
    expect((await visit(rotated.port, 'TLSv1.2', old.session)).reused).toBe(false);
    // Not the session's own expiry: a ticket of the same age under a current key still resumes.
    expect((await visit(control.port, 'TLSv1.2', kept.session)).reused).toBe(true);
  });

  // node:tls in Node.js 22.23.5 and 24.22.3 (not 20.20.2) binds a server's sessions to the client's SNI name:
  // TLSWrap::BindSessionsToServerName (from its ClientHello callback) sets each connection's session id context
  // to SHA-256(sessionIdContext || 0x00 || servername), and that is what its tickets carry. OpenSSL resumes a
  // ticket only under the session id context it was issued in, so a server of ours given the same raw
  // `sessionIdContext` no longer shares tickets with such a node:tls server (either way); given the derived
  // context (for the name its clients send) it does. Which one node:tls uses is read from its ticket.
  test.each(VERSIONS)('%s: interop with node:tls given the same ticketKeys and session id context', async (v) => {
    const ticketKeys = randomBytes(48);
    const sessionIdContext = 'interop';
    const node = tls.createServer({ cert: CERT.cert, key: CERT.key, ticketKeys, sessionIdContext }, (s) => s.pipe(s));
    node.listen(0, HOST);
    await once(node, 'listening');
    try {
      const nodePort = (node.address() as { port: number }).port;
      const fromNode = await visit(nodePort, v);
      expect(issuedWith(fromNode.session, ticketKeys)).toBe(true);
      const nodeContext = ticketSessionIdContext(fromNode.session, ticketKeys);
      const bound = nameBound(sessionIdContext, ''); // visit() connects to an address: no SNI
      // One of the two known behaviours, and the measured one on the releases we test on.
      expect([sessionIdContext, bound.toString('latin1')]).toContain(nodeContext.toString('latin1'));
      const binds = nodeContext.equals(bound);
      if (process.version in BINDS_SESSIONS_TO_SERVER_NAME) {
        expect(binds).toBe(BINDS_SESSIONS_TO_SERVER_NAME[process.version]);
      }

      // The same raw sessionIdContext: tickets go both ways only where node:tls does not bind.
      const raw = await fx.start({ tickets: true, ticketKeys, sessionIdContext }, echo);
      expect((await visit(raw.port, v, fromNode.session)).reused).toBe(!binds);
      const fromRaw = await visit(raw.port, v);
      expect((await visit(nodePort, v, fromRaw.session)).reused).toBe(!binds);

      // The context node:tls gives these connections: tickets go both ways on every version.
      const ours = await fx.start({ tickets: true, ticketKeys, sessionIdContext: nodeContext }, echo);
      expect((await visit(ours.port, v, fromNode.session)).reused).toBe(true);
      const fromUs = await visit(ours.port, v);
      expect((await visit(nodePort, v, fromUs.session)).reused).toBe(true);
      expect(node.getTicketKeys().equals(ours.server.getTicketKeys())).toBe(true);
    } finally {
      node.close();
    }
  });

  test('getTicketKeys: what was set; random and distinct by default; 48 bytes', () => {
    const keys = randomBytes(48);
    const ctx = new SecureContext({ cert: CERT.cert, key: CERT.key, tickets: true, ticketKeys: keys });
    expect(ctx.getTicketKeys().equals(keys)).toBe(true);
    const a = new SecureContext({ cert: CERT.cert, key: CERT.key, tickets: true }).getTicketKeys();
    const b = new SecureContext({ cert: CERT.cert, key: CERT.key, tickets: true }).getTicketKeys();
    expect(a).toHaveLength(48);
    expect(a.equals(b)).toBe(false);
    // Safe with tickets off (the keys are kept, unused).
    const off = new SecureContext({ cert: CERT.cert, key: CERT.key });
    off.setTicketKeys(keys);
    expect(off.getTicketKeys().equals(keys)).toBe(true);
  });

  test('validation', () => {
    const base = { cert: CERT.cert, key: CERT.key };
    expect(() => new SecureContext({ ...base, ticketKeys: randomBytes(48) })).toThrow(
      /ticketKeys go with tickets: true/,
    );
    expect(() => new SecureContext({ ...base, tickets: true, ticketKeys: randomBytes(32) })).toThrow(RangeError);
    expect(() => new SecureContext({ ...base, tickets: true, ticketKeys: 'x'.repeat(48) as never })).toThrow(
      /ticketKeys must be a Buffer/,
    );
    const ctx = new SecureContext({ ...base, tickets: true });
    expect(() => ctx.setTicketKeys(randomBytes(47))).toThrow(RangeError);
    expect(() => ctx.setTicketKeys(undefined as never)).toThrow(TypeError);
  });

  test('tickets off (the default): no ticket is issued and sessions resume from the cache', async () => {
    const { server, port } = await fx.start({}, echo);
    const first = await visit(port, 'TLSv1.2');
    expect(issuedWith(first.session, server.getTicketKeys())).toBe(false);
    expect((await visit(port, 'TLSv1.2', first.session)).reused).toBe(true);
    expect(server.context.stats().hits).toBe(1);
  });

  test('worker threads serving a shared context use the same keys, and see setTicketKeys', async () => {
    const k1 = randomBytes(48);
    const main = await fx.start({ tickets: true, ticketKeys: k1 }, echo);
    const worker = new Worker(path.join(__dirname, 'fixtures', 'shared-context-worker.js'), {
      workerData: { handle: main.server.context.share() },
    });
    try {
      const [msg] = (await within(once(worker, 'message'), 10000, 'worker listening')) as [{ port: number }];
      const first = await visit(main.port, 'TLSv1.3');
      expect((await visit(msg.port, 'TLSv1.3', first.session)).reused).toBe(true);
      const k2 = randomBytes(48);
      main.server.setTicketKeys(k2);
      const fromWorker = await visit(msg.port, 'TLSv1.2');
      expect(issuedWith(fromWorker.session, k2)).toBe(true);
      expect(SecureContext.fromShared(main.server.context.share()).getTicketKeys().equals(k2)).toBe(true);
    } finally {
      worker.postMessage('close');
      await within(once(worker, 'exit'), 10000, 'worker exit');
    }
  });
});
