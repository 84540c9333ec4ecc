// SecureContext: session id context derivation and its effect on resumption; options validation.
import { SecureContext, generateCertificate } from '../lib';
import { CERT, TestServer, connectClient, makeContext } from './helpers';

const TLS12 = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const;

describe('session id context', () => {
  test('the default is 32 bytes, stable for the same inputs, different per serviceName and certificate', () => {
    const a = makeContext();
    const b = makeContext();
    expect(a.sessionIdContext).toBeInstanceOf(Buffer);
    expect(a.sessionIdContext).toHaveLength(32);
    expect(a.sessionIdContext.equals(b.sessionIdContext)).toBe(true);
    const named = makeContext({ serviceName: 'other-service' });
    expect(named.sessionIdContext).toHaveLength(32);
    expect(named.sessionIdContext.equals(a.sessionIdContext)).toBe(false);
    const other = generateCertificate();
    const otherCert = new SecureContext({ cert: other.cert, key: other.key });
    expect(otherCert.sessionIdContext.equals(a.sessionIdContext)).toBe(false);
    const verifying = makeContext({ requestCert: true, ca: CERT.cert });
    expect(verifying.sessionIdContext.equals(a.sessionIdContext)).toBe(false);
  });

  test('an explicit sessionIdContext is used as given; more than 32 bytes is refused', () => {
    expect(makeContext({ sessionIdContext: 'abc' }).sessionIdContext.toString()).toBe('abc');
    const ctx = makeContext();
    ctx.setSessionIdContext(Buffer.alloc(32, 7));
    expect(ctx.sessionIdContext.equals(Buffer.alloc(32, 7))).toBe(true);
    expect(() => makeContext({ sessionIdContext: 'x'.repeat(33) })).toThrow(RangeError);
    expect(() => ctx.setSessionIdContext('x'.repeat(33))).toThrow(RangeError);
  });

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    test(`${version}: after setSessionIdContext a session of the old context is not resumed, new ones are`, async () => {
      const v = { minVersion: version, maxVersion: version };
      const ctx = makeContext();
      const srv = await TestServer.start(ctx);
      try {
        const old = await connectClient(srv.port, v);
        expect((await connectClient(srv.port, { ...v, session: old.session })).reused).toBe(true);
        ctx.setSessionIdContext('other');
        expect(ctx.sessionIdContext.toString()).toBe('other');
        const hits = ctx.stats().hits;
        const after = await connectClient(srv.port, { ...v, session: old.session });
        expect(after.reused).toBe(false);
        expect((await srv.connection(2).then((c) => c.secure)).reused).toBe(false);
        expect(ctx.stats().hits).toBe(hits);
        const again = await connectClient(srv.port, { ...v, session: after.session });
        expect(again.reused).toBe(true);
        expect(ctx.stats().hits).toBe(hits + 1);
      } finally {
        await srv.close();
      }
    });
  }

  test('two contexts have separate caches even with the same certificate and sid context', async () => {
    const a = makeContext();
    const b = makeContext();
    const sa = await TestServer.start(a);
    const sb = await TestServer.start(b);
    try {
      const first = await connectClient(sa.port, TLS12);
      expect((await connectClient(sb.port, { ...TLS12, session: first.session })).reused).toBe(false);
      expect((await connectClient(sa.port, { ...TLS12, session: first.session })).reused).toBe(true);
    } finally {
      await sa.close();
      await sb.close();
    }
  });

  test('one context shared by two servers shares its cache', async () => {
    const ctx = makeContext();
    const s1 = await TestServer.start(ctx);
    const s2 = await TestServer.start(ctx);
    try {
      const first = await connectClient(s1.port, TLS12);
      expect((await connectClient(s2.port, { ...TLS12, session: first.session })).reused).toBe(true);
    } finally {
      await s1.close();
      await s2.close();
    }
  });
});

describe('options validation', () => {
  test.each([
    ['sessionTimeout -1', { sessionTimeout: -1 }],
    ['sessionTimeout 1.5', { sessionTimeout: 1.5 }],
    ['sessionTimeout NaN', { sessionTimeout: NaN }],
    ['sessionCacheSize -5', { sessionCacheSize: -5 }],
    ['numTickets 17', { numTickets: 17 }],
    ['minVersion TLSv1.1', { minVersion: 'TLSv1.1' }],
    ['minVersion above maxVersion', { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.2' }],
    ['empty ALPN name', { ALPNProtocols: [''] }],
  ])('%s is a RangeError', (_name, options) => {
    expect(() => makeContext(options as object)).toThrow(RangeError);
  });

  test('setters validate too', () => {
    const ctx = makeContext();
    expect(() => (ctx.sessionTimeout = -1)).toThrow(RangeError);
    expect(() => (ctx.sessionCacheSize = 0.5)).toThrow(RangeError);
    ctx.sessionCacheSize = 7;
    expect(ctx.stats().cacheSize).toBe(7);
  });

  test('cert without key is a TypeError', () => {
    expect(() => new SecureContext({ cert: CERT.cert })).toThrow(TypeError);
    expect(() => new SecureContext({ key: CERT.key })).toThrow(TypeError);
  });

  test('defaults: cache size 20480, timeout 300', () => {
    const st = makeContext().stats();
    expect(st.cacheSize).toBe(20480);
    expect(st.timeout).toBe(300);
    expect(st.number).toBe(0);
  });
});
