// Resumption from OpenSSL's internal cache with real clients: openssl s_client and Node's tls.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import type { TLSConnection } from '../lib';
import { TestServer, connectClient, expectStats, makeContext, sClient } from './helpers';

/** Echoes the first chunk, then closes with close_notify, so s_client -ign_eof exits by itself. */
const echoOnceThenClose = (conn: TLSConnection) => conn.once('data', (d: Buffer) => conn.end(d));

describe('resumption', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'osc-resume-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  test('s_client -reconnect, TLS 1.2 by session id: one id six times, five reused', async () => {
    const ctx = makeContext();
    const srv = await TestServer.start(ctx);
    try {
      const r = await sClient(srv.port, ['-reconnect', '-tls1_2', '-no_ticket']);
      expect(r.timedOut).toBe(false);
      const ids = [...r.stdout.matchAll(/^\s*Session-ID: ([0-9A-F]+)$/gm)].map((m) => m[1]);
      expect(ids).toHaveLength(6);
      expect(new Set(ids).size).toBe(1);
      expect(ids[0]).toHaveLength(64);
      expect(r.stdout.match(/^New, TLSv1\.2/gm)).toHaveLength(1);
      expect(r.stdout.match(/^Reused, TLSv1\.2/gm)).toHaveLength(5);
      await srv.connection(5);
      const sessions = await Promise.all(srv.conns.map((c) => c.secure));
      expect(sessions.map((s) => s.reused)).toEqual([false, true, true, true, true, true]);
      expect(sessions.every((s) => s.id === ids[0].toLowerCase())).toBe(true);
      await Promise.all(srv.conns.map((c) => c.closed));
      expectStats(ctx, { hits: 5, misses: 0, acceptGood: 6, number: 1 });
    } finally {
      await srv.close();
    }
  });

  test('s_client TLS 1.3: -sess_out then -sess_in resumes statefully', async () => {
    const ctx = makeContext();
    const srv = await TestServer.start(ctx, { handler: echoOnceThenClose });
    const sess = path.join(tmp, 'tls13.pem');
    try {
      const first = await sClient(srv.port, ['-tls1_3', '-ign_eof', '-sess_out', sess], {
        input: 'hi\n',
        inputDelayMs: 500,
      });
      expect(first.timedOut).toBe(false);
      expect(first.stdout).toMatch(/^New, TLSv1\.3/m);
      // the server closed with close_notify after its echo
      expect(await (await srv.connection(0)).closed).toEqual({ clean: true, ending: 'local' });
      const second = await sClient(srv.port, ['-tls1_3', '-ign_eof', '-sess_in', sess], {
        input: 'hi\n',
        inputDelayMs: 500,
      });
      expect(second.timedOut).toBe(false);
      expect(second.stdout).toMatch(/^Reused, TLSv1\.3/m);
      const s = await (await srv.connection(1)).secure;
      expect(s.reused).toBe(true);
      expect(s.protocol).toBe('TLSv1.3');
      expect(ctx.stats().hits).toBe(1);
    } finally {
      await srv.close();
    }
  });

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    test(`node tls client, ${version}: the saved session resumes`, async () => {
      const ctx = makeContext();
      const srv = await TestServer.start(ctx);
      const v = { minVersion: version, maxVersion: version };
      try {
        const a = await connectClient(srv.port, v);
        expect(a.protocol).toBe(version);
        expect(a.reused).toBe(false);
        expect(a.session).toBeInstanceOf(Buffer);
        const sa = await srv.conns[0].secure;
        expect(sa.reused).toBe(false);
        expect(sa.protocol).toBe(version);
        expect(sa.id).toMatch(/^[0-9a-f]{64}$/);
        expect(ctx.stats().number).toBe(version === 'TLSv1.2' ? 1 : 2); // TLS 1.3: one entry per ticket
        const b = await connectClient(srv.port, { ...v, session: a.session });
        expect(b.reused).toBe(true);
        const sb = await (await srv.connection(1)).secure;
        expect(sb.reused).toBe(true);
        if (version === 'TLSv1.2') expect(sb.id).toBe(sa.id);
        expectStats(ctx, { hits: 1, misses: 0, acceptGood: 2 });
      } finally {
        await srv.close();
      }
    });

    test(`node tls client, ${version}: a session this cache never saw is a miss`, async () => {
      const other = await TestServer.start(makeContext());
      const ctx = makeContext();
      const srv = await TestServer.start(ctx);
      const v = { minVersion: version, maxVersion: version };
      try {
        const foreign = await connectClient(other.port, v);
        expect(foreign.session).toBeInstanceOf(Buffer);
        const r = await connectClient(srv.port, { ...v, session: foreign.session });
        expect(r.reused).toBe(false);
        expect((await srv.conns[0].secure).reused).toBe(false);
        expectStats(ctx, { misses: 1, hits: 0 });
        // and the fresh session it got instead resumes
        const again = await connectClient(srv.port, { ...v, session: r.session });
        expect(again.reused).toBe(true);
        expect(ctx.stats().hits).toBe(1);
      } finally {
        await srv.close();
        await other.close();
      }
    });
  }
});
