// Errors: bad certificates and keys with OpenSSL's reasons; hostile or broken clients.
import net from 'node:net';

import { SecureContext, TLSError, generateCertificate } from '../lib';
import { CERT, HOST, TestServer, captureClientHello, connectClient, makeContext, thrown, within } from './helpers';

describe('certificate and key errors', () => {
  test('garbage instead of a certificate: ERR_OSC_BAD_CERT with OpenSSL reason', () => {
    const e = thrown(() => new SecureContext({ cert: 'not a certificate', key: CERT.key }));
    expect(e.code).toBe('ERR_OSC_BAD_CERT');
    expect(e.reason).toBe('no start line');
    const bad = '-----BEGIN CERTIFICATE-----\nZm9vYmFyYmF6\n-----END CERTIFICATE-----\n';
    const e2 = thrown(() => new SecureContext({ cert: bad, key: CERT.key }));
    expect(e2.code).toBe('ERR_OSC_BAD_CERT');
    expect(e2.reason.length).toBeGreaterThan(0);
    expect(e2.message).toContain(e2.reason);
  });

  test('garbage instead of a key: ERR_OSC_BAD_KEY', () => {
    const e = thrown(() => new SecureContext({ cert: CERT.cert, key: 'nope' }));
    expect(e.code).toBe('ERR_OSC_BAD_KEY');
    expect(e.reason.length).toBeGreaterThan(0);
  });

  test("a key that does not match the certificate: ERR_OSC_KEY_MISMATCH 'key values mismatch'", () => {
    const other = generateCertificate();
    const e = thrown(() => new SecureContext({ cert: CERT.cert, key: other.key }));
    expect(e.code).toBe('ERR_OSC_KEY_MISMATCH');
    expect(e.reason).toBe('key values mismatch');
  });

  test('garbage CA: ERR_OSC_BAD_CA', () => {
    const e = thrown(() => makeContext({ requestCert: true, ca: 'no CA here' }));
    expect(e.code).toBe('ERR_OSC_BAD_CA');
  });

  test('generateCertificate validates keyType and makes RSA certificates', () => {
    expect(() => generateCertificate({ keyType: 'dsa' as 'ec' })).toThrow(RangeError);
    const rsa = generateCertificate({ keyType: 'rsa', commonName: 'rsa-host' });
    expect(rsa.cert).toContain('BEGIN CERTIFICATE');
    expect(() => new SecureContext({ cert: rsa.cert, key: rsa.key })).not.toThrow();
  });
});

/** Opens a raw TCP connection, sends `bytes`, optionally ends; resolves when the server closes it. */
function rawClient(port: number, bytes: Buffer, end: boolean): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ port, host: HOST }, () => {
      if (end) s.end(bytes);
      else s.write(bytes);
    });
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => undefined);
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

describe('broken clients', () => {
  test('garbage instead of a ClientHello fails that connection only', async () => {
    const ctx = makeContext();
    const srv = await TestServer.start(ctx);
    try {
      // a good client whose handshake is in flight while the garbage arrives
      const good = connectClient(srv.port);
      const reply = await within(
        rawClient(srv.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), false),
        10000,
        'server to close the garbage connection',
      );
      expect((await good).protocol).toBe('TLSv1.3');
      const bad = srv.conns.find((c) => c.errors.length > 0);
      expect(bad).toBeDefined();
      const err = bad!.errors[0] as TLSError;
      expect(err).toBeInstanceOf(TLSError);
      expect(err.code).toBe('ERR_OSC_HANDSHAKE');
      expect(err.reason.length).toBeGreaterThan(0);
      expect(await bad!.closed).toMatchObject({ clean: false, ending: 'error' });
      if (reply.length > 0) expect(reply[0]).toBe(0x15); // if anything went back, it is an alert
      // still serving
      expect((await connectClient(srv.port)).protocol).toBe('TLSv1.3');
      expect(ctx.stats().acceptGood).toBe(2);
    } finally {
      await srv.close();
    }
  });

  test('a truncated record followed by FIN closes without an error event', async () => {
    const srv = await TestServer.start(makeContext());
    try {
      await within(rawClient(srv.port, Buffer.from([0x16, 0x03, 0x01, 0x02]), true), 10000, 'close');
      const c = await srv.connection(0);
      expect(await c.closed).toEqual({ clean: false, ending: 'eof' });
      expect(c.errors).toEqual([]);
      await expect(c.secure).rejects.toThrow();
      expect((await connectClient(srv.port)).reused).toBe(false);
    } finally {
      await srv.close();
    }
  });

  test.each(['fin', 'rst'] as const)(
    'a client that leaves mid-handshake (%s) does not upset the server',
    async (how) => {
      const ctx = makeContext();
      const srv = await TestServer.start(ctx);
      try {
        const hello = await captureClientHello();
        expect(hello[0]).toBe(0x16); // handshake record
        const raw = net.connect({ port: srv.port, host: HOST }, () => raw.write(hello));
        raw.on('error', () => undefined);
        const closed = new Promise<void>((r) => raw.once('close', () => r()));
        // the server's first flight arrives: leave before finishing the handshake
        raw.once('data', () => (how === 'fin' ? raw.end() : raw.resetAndDestroy()));
        await within(closed, 10000, 'raw client close');
        const c = await srv.connection(0);
        const info = await within(c.closed, 10000, 'server side close');
        expect(info.clean).toBe(false);
        expect(['eof', 'reset', 'error']).toContain(info.ending);
        await expect(c.secure).rejects.toThrow();
        expect(ctx.stats().number).toBe(0);
        expect((await connectClient(srv.port)).protocol).toBe('TLSv1.3');
      } finally {
        await srv.close();
      }
    },
  );
});
