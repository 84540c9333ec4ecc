// Client certificates: verification against a CA, resumption with the default sid ctx, refusal.
import { SecureContext, generateCertificate } from '../lib';
import { CERT, TestServer, collectEvents, connectClient, connectExpectingFailure, within } from './helpers';

const ca = generateCertificate({ isCA: true, commonName: 'Test CA' });
const client = generateCertificate({ commonName: 'client-one', issuer: ca, altNames: ['client.example'] });
const stranger = generateCertificate({ commonName: 'stranger' }); // self-signed, not from the CA

const context = (options: { rejectUnauthorized?: boolean } = {}) =>
  new SecureContext({ cert: CERT.cert, key: CERT.key, requestCert: true, ca: ca.cert, ...options });

describe.each(['TLSv1.2', 'TLSv1.3'] as const)('client certificates, %s', (version) => {
  const v = { minVersion: version, maxVersion: version };

  test('a certificate from the CA is authorized, visible, and survives resumption', async () => {
    const ctx = context();
    const srv = await TestServer.start(ctx);
    try {
      const a = await connectClient(srv.port, { ...v, cert: client.cert, key: client.key });
      expect(a.reused).toBe(false);
      const sa = await srv.conns[0].secure;
      expect(sa.authorized).toBe(true);
      expect(sa.authorizationError).toBeNull();
      expect(sa.peerCertificate).not.toBeNull();
      expect(sa.peerCertificate!.subject).toContain('CN=client-one');
      expect(sa.peerCertificate!.issuer).toContain('CN=Test CA');

      const b = await connectClient(srv.port, { ...v, cert: client.cert, key: client.key, session: a.session });
      expect(b.reused).toBe(true);
      const sb = await srv.conns[1].secure;
      expect(sb.reused).toBe(true);
      expect(sb.authorized).toBe(true);
      expect(sb.peerCertificate).not.toBeNull();
      expect(sb.peerCertificate!.fingerprint256).toBe(sa.peerCertificate!.fingerprint256);
      expect(ctx.stats().hits).toBe(1);
    } finally {
      await srv.close();
    }
  });

  test('a client without a certificate is refused and the server connection names the reason', async () => {
    const ctx = context();
    const srv = await TestServer.start(ctx);
    try {
      const removed: string[] = [];
      ctx.on('sessionRemoved', (id) => removed.push(id));
      const clientError = await connectExpectingFailure(srv.port, v);
      expect(clientError).not.toBeNull();
      const c = await srv.connection(0);
      const info = await c.closed;
      expect(info.clean).toBe(false);
      expect(info.ending).toBe('error');
      expect(c.errors).toHaveLength(1);
      const err = c.errors[0] as Error & { code?: string; reason?: string };
      expect(err.code).toBe('ERR_OSC_HANDSHAKE');
      expect(err.reason).toMatch(/certificate/i);
      await expect(c.secure).rejects.toThrow(/closed before secure/);
      expect(ctx.stats().number).toBe(0);
      // the server keeps serving
      const ok = await connectClient(srv.port, { ...v, cert: client.cert, key: client.key });
      expect(ok.protocol).toBe(version);
      // nothing was cached for the refused client, so nothing may be reported as removed
      expect(removed).toEqual([]);
    } finally {
      await srv.close();
    }
  });

  test('a certificate from another issuer is refused with the verification reason', async () => {
    const srv = await TestServer.start(context());
    try {
      await connectExpectingFailure(srv.port, { ...v, cert: stranger.cert, key: stranger.key });
      const c = await srv.connection(0);
      await c.closed;
      const err = c.errors[0] as Error & { code?: string; reason?: string };
      expect(err.code).toBe('ERR_OSC_HANDSHAKE');
      expect(err.reason).toMatch(/certificate verify failed/);
    } finally {
      await srv.close();
    }
  });

  test('rejectUnauthorized false: the handshake completes and records the verdict', async () => {
    const ctx = context({ rejectUnauthorized: false });
    const srv = await TestServer.start(ctx);
    try {
      const added = collectEvents(ctx, 'sessionAdded', 1);
      await connectClient(srv.port, { ...v, cert: stranger.cert, key: stranger.key });
      const s = await srv.conns[0].secure;
      expect(s.authorized).toBe(false);
      expect(s.authorizationError).toMatch(/self[- ]signed/);
      expect(s.peerCertificate!.subject).toContain('CN=stranger');
      await within(added, 5000, 'sessionAdded');
      const none = await connectClient(srv.port, v);
      expect(none.protocol).toBe(version);
      const s2 = await srv.conns[1].secure;
      expect(s2.peerCertificate).toBeNull();
      expect(s2.authorized).toBe(false);
    } finally {
      await srv.close();
    }
  });
});
