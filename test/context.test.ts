// SecureContext: session id context derivation and its effect on resumption; tickets, the cache
// switch, certificate/key files and passphrases, cipher selection; options validation.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { SecureContext, generateCertificate } from '../lib';
import { CERT, TestServer, connectClient, expectStats, makeContext, run, thrown } from './helpers';

const TLS12 = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const;
const TLS13 = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;

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

describe('tickets: true', () => {
  test.each([
    ['TLSv1.2', 'a ticket', 1],
    ['TLSv1.3', 'a stateless ticket', 2], // numTickets
  ] as const)(
    '%s: the client resumes with %s, also once the cache is flushed; stats count the hit',
    async (version, _what, tickets) => {
      const v = { minVersion: version, maxVersion: version };
      const ctx = makeContext({ tickets: true });
      const srv = await TestServer.start(ctx);
      try {
        const a = await connectClient(srv.port, v);
        expect(a.reused).toBe(false);
        expect(a.sessionEvents).toBe(tickets);
        // Only a ticket can resume now: the cache holds nothing.
        ctx.flush();
        expect(ctx.stats().number).toBe(0);
        const b = await connectClient(srv.port, { ...v, session: a.session });
        expect(b.reused).toBe(true);
        expect(b.protocol).toBe(version);
        expect((await (await srv.connection(1)).secure).reused).toBe(true);
        expectStats(ctx, { hits: 1, misses: 0, acceptGood: 2 });
      } finally {
        await srv.close();
      }
    },
  );
});

describe('sessionCache: false', () => {
  test.each([['TLSv1.2'], ['TLSv1.3']] as const)(
    '%s: nothing is cached and a saved session does not resume',
    async (version) => {
      const v = { minVersion: version, maxVersion: version };
      const ctx = makeContext({ sessionCache: false });
      const srv = await TestServer.start(ctx);
      try {
        const a = await connectClient(srv.port, v);
        expect(a.protocol).toBe(version);
        expect(a.session).toBeInstanceOf(Buffer);
        expect(ctx.stats().number).toBe(0);
        const b = await connectClient(srv.port, { ...v, session: a.session });
        expect(b.reused).toBe(false);
        expect((await (await srv.connection(1)).secure).reused).toBe(false);
        expectStats(ctx, { number: 0, hits: 0, acceptGood: 2 });
      } finally {
        await srv.close();
      }
    },
  );
});

describe('certificate and key files, passphrase', () => {
  let dir: string;
  let certFile: string;
  let keyFile: string;
  let encryptedKeyFile: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'osc-pem-'));
    certFile = path.join(dir, 'cert.pem');
    keyFile = path.join(dir, 'key.pem');
    encryptedKeyFile = path.join(dir, 'key.enc.pem');
    writeFileSync(certFile, CERT.cert);
    writeFileSync(keyFile, CERT.key);
    const r = await run('openssl', [
      'pkey',
      '-in',
      keyFile,
      '-aes256',
      '-passout',
      'pass:secret',
      '-out',
      encryptedKeyFile,
    ]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(readFileSync(encryptedKeyFile, 'utf8')).toContain('BEGIN ENCRYPTED PRIVATE KEY');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The context serves a client that verifies the certificate against CERT. */
  async function serves(ctx: SecureContext): Promise<void> {
    const srv = await TestServer.start(ctx);
    try {
      const r = await connectClient(srv.port);
      expect(r.authorized).toBe(true);
    } finally {
      await srv.close();
    }
  }

  test('certFile/keyFile: the files are read; same derived sid context as from PEM; it serves', async () => {
    const ctx = new SecureContext({ certFile, keyFile });
    expect(ctx.sessionIdContext.equals(makeContext().sessionIdContext)).toBe(true);
    await serves(ctx);
  });

  test('an encrypted key with its passphrase, from keyFile or as PEM: it serves', async () => {
    await serves(new SecureContext({ certFile, keyFile: encryptedKeyFile, passphrase: 'secret' }));
    await serves(new SecureContext({ cert: CERT.cert, key: readFileSync(encryptedKeyFile), passphrase: 'secret' }));
  });

  test('an encrypted key with a wrong or no passphrase: ERR_OSC_BAD_KEY with OpenSSL reason', () => {
    const wrong = thrown(() => new SecureContext({ certFile, keyFile: encryptedKeyFile, passphrase: 'wrong' }));
    expect(wrong.code).toBe('ERR_OSC_BAD_KEY');
    expect(wrong.reason.length).toBeGreaterThan(0);
    expect(wrong.message).toContain(wrong.reason);
    const none = thrown(() => new SecureContext({ certFile, keyFile: encryptedKeyFile }));
    expect(none.code).toBe('ERR_OSC_BAD_KEY');
  });

  test('a PEM and its file both given is a TypeError', () => {
    expect(() => new SecureContext({ cert: CERT.cert, certFile, key: CERT.key })).toThrow(TypeError);
    expect(() => new SecureContext({ cert: CERT.cert, key: CERT.key, keyFile })).toThrow(TypeError);
    expect(() => makeContext({ requestCert: true, ca: CERT.cert, caFile: certFile })).toThrow(TypeError);
  });
});

describe('ciphers and ciphersuites', () => {
  test.each([
    ['ciphers', TLS12, { ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }, 'ECDHE-ECDSA-AES128-GCM-SHA256'],
    ['ciphersuites', TLS13, { ciphersuites: 'TLS_CHACHA20_POLY1305_SHA256' }, 'TLS_CHACHA20_POLY1305_SHA256'],
  ] as const)(
    '%s decides the cipher: both ends report it, the default picks another',
    async (_name, v, option, cipher) => {
      const srv = await TestServer.start(makeContext({ ...v, ...option }));
      const plain = await TestServer.start(makeContext(v));
      try {
        const r = await connectClient(srv.port);
        expect(r.protocol).toBe(v.maxVersion);
        expect(r.cipher).toBe(cipher);
        expect((await srv.conns[0].secure).cipher).toBe(cipher);
        expect((await connectClient(plain.port)).cipher).not.toBe(cipher);
      } finally {
        await srv.close();
        await plain.close();
      }
    },
  );

  test.each([
    ['ciphers', { ciphers: 'NOT-A-CIPHER' }],
    ['ciphersuites', { ciphersuites: 'TLS_NOT_A_SUITE' }],
  ])('a bogus %s list: ERR_OSC_BAD_OPTION', (_name, options) => {
    const e = thrown(() => makeContext(options));
    expect(e.code).toBe('ERR_OSC_BAD_OPTION');
    expect(e.reason).toBe('no cipher match');
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
