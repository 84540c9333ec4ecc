// Size limit, lifetime, flush/remove and the session events of the internal cache.
import { TestServer, collectEvents, connectClient, delay, makeContext } from './helpers';

const TLS12 = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const;
const TLS13 = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;

describe('cache limits', () => {
  test('sessionCacheSize 2: the third session evicts the first', async () => {
    const ctx = makeContext({ sessionCacheSize: 2 });
    expect(ctx.sessionCacheSize).toBe(2);
    const srv = await TestServer.start(ctx);
    try {
      const a = await connectClient(srv.port, TLS12);
      const b = await connectClient(srv.port, TLS12);
      const c = await connectClient(srv.port, TLS12);
      let st = ctx.stats();
      // OpenSSL 3.0 evicts while number >= size after inserting, so it may keep size - 1.
      expect(st.number).toBeGreaterThanOrEqual(1);
      expect(st.number).toBeLessThanOrEqual(2);
      expect(st.cacheFull).toBeGreaterThanOrEqual(1);
      expect((await connectClient(srv.port, { ...TLS12, session: c.session })).reused).toBe(true);
      expect((await connectClient(srv.port, { ...TLS12, session: a.session })).reused).toBe(false);
      st = ctx.stats();
      expect(st.misses).toBeGreaterThanOrEqual(1);
      expect(st.number).toBeLessThanOrEqual(2);
      expect(b.session).toBeInstanceOf(Buffer);
    } finally {
      await srv.close();
    }
  });

  test('sessionTimeout 1: a session two seconds old is expired', async () => {
    const ctx = makeContext({ sessionTimeout: 1 });
    expect(ctx.sessionTimeout).toBe(1);
    const srv = await TestServer.start(ctx);
    try {
      const a = await connectClient(srv.port, TLS12);
      await delay(2200);
      const b = await connectClient(srv.port, { ...TLS12, session: a.session });
      expect(b.reused).toBe(false);
      expect((await srv.connection(1).then((c) => c.secure)).reused).toBe(false);
      const st = ctx.stats();
      expect(st.timeouts).toBeGreaterThanOrEqual(1);
      expect(st.hits).toBe(0);
    } finally {
      await srv.close();
    }
  });

  test('flushExpired() removes expired sessions only; sessionTimeout setter applies to new sessions', async () => {
    const ctx = makeContext(); // 300 s
    const srv = await TestServer.start(ctx);
    try {
      const long = await connectClient(srv.port, TLS12); // conns[0]: made under 300 s
      ctx.sessionTimeout = 1;
      expect(ctx.sessionTimeout).toBe(1);
      const short = await connectClient(srv.port, TLS12); // conns[1]: made under 1 s
      const removed = collectEvents(ctx, 'sessionRemoved', 1, 8000);
      await delay(2200);
      ctx.sessionTimeout = 300;
      expect(ctx.stats().timeout).toBe(300);
      const fresh = await connectClient(srv.port, TLS12);
      expect(ctx.stats().number).toBe(3);
      ctx.flushExpired();
      expect(ctx.stats().number).toBe(2);
      const [gone] = await removed;
      expect(gone).toBe((await srv.conns[1].secure).id);
      // Lowering the timeout did not shorten the session made before it.
      expect((await connectClient(srv.port, { ...TLS12, session: long.session })).reused).toBe(true);
      expect((await connectClient(srv.port, { ...TLS12, session: fresh.session })).reused).toBe(true);
      expect((await connectClient(srv.port, { ...TLS12, session: short.session })).reused).toBe(false);
    } finally {
      await srv.close();
    }
  });

  test('flush() empties the cache', async () => {
    const ctx = makeContext();
    const srv = await TestServer.start(ctx);
    try {
      const a = await connectClient(srv.port, TLS12);
      const b = await connectClient(srv.port, TLS13);
      expect(ctx.stats().number).toBe(3);
      ctx.flush();
      expect(ctx.stats().number).toBe(0);
      expect((await connectClient(srv.port, { ...TLS12, session: a.session })).reused).toBe(false);
      expect((await connectClient(srv.port, { ...TLS13, session: b.session })).reused).toBe(false);
      expect(ctx.stats().hits).toBe(0);
    } finally {
      await srv.close();
    }
  });

  test('remove(id) removes that session only', async () => {
    const ctx = makeContext();
    const srv = await TestServer.start(ctx);
    try {
      const a = await connectClient(srv.port, TLS12);
      const b = await connectClient(srv.port, TLS12);
      const idA = (await srv.conns[0].secure).id;
      expect(ctx.remove(idA)).toBe(true);
      expect(ctx.remove(idA)).toBe(false);
      expect(ctx.remove('00'.repeat(32))).toBe(false);
      expect(ctx.stats().number).toBe(1);
      expect((await connectClient(srv.port, { ...TLS12, session: a.session })).reused).toBe(false);
      expect((await connectClient(srv.port, { ...TLS12, session: b.session })).reused).toBe(true);
    } finally {
      await srv.close();
    }
  });

  test('remove(id) of a TLS 1.3 session id (the last ticket) makes the saved ticket non-resumable', async () => {
    const ctx = makeContext({ numTickets: 1 });
    const srv = await TestServer.start(ctx);
    try {
      const a = await connectClient(srv.port, TLS13);
      expect(ctx.stats().number).toBe(1);
      const id = (await srv.conns[0].secure).id;
      expect(ctx.remove(Buffer.from(id, 'hex'))).toBe(true);
      expect(ctx.stats().number).toBe(0);
      expect((await connectClient(srv.port, { ...TLS13, session: a.session })).reused).toBe(false);
    } finally {
      await srv.close();
    }
  });

  test('sessionAdded / sessionRemoved carry the session ids (TLS 1.2)', async () => {
    const ctx = makeContext();
    const srv = await TestServer.start(ctx);
    try {
      const added = collectEvents(ctx, 'sessionAdded', 1);
      await connectClient(srv.port, TLS12);
      const id = (await srv.conns[0].secure).id;
      expect(await added).toEqual([id]);
      const removed = collectEvents(ctx, 'sessionRemoved', 1);
      expect(ctx.remove(id)).toBe(true);
      expect(await removed).toEqual([id]);
    } finally {
      await srv.close();
    }
  });

  test('sessionAdded fires once per TLS 1.3 ticket; flush() reports each removal', async () => {
    const ctx = makeContext({ numTickets: 3 });
    const srv = await TestServer.start(ctx);
    try {
      const added = collectEvents(ctx, 'sessionAdded', 3);
      const r = await connectClient(srv.port, TLS13);
      expect(r.sessionEvents).toBe(3);
      const ids = await added;
      expect(new Set(ids).size).toBe(3);
      expect(ids).toContain((await srv.conns[0].secure).id);
      expect(ctx.stats().number).toBe(3);
      const removed = collectEvents(ctx, 'sessionRemoved', 3);
      ctx.flush();
      expect((await removed).sort()).toEqual([...ids].sort());
    } finally {
      await srv.close();
    }
  });

  test('drop policy reports the removal of every ticket of an unclean TLS 1.3 connection', async () => {
    const ctx = makeContext();
    const srv = await TestServer.start(ctx, { uncleanClose: 'drop' });
    try {
      const added = collectEvents(ctx, 'sessionAdded', 2);
      const removed = collectEvents(ctx, 'sessionRemoved', 2);
      await connectClient(srv.port, { ...TLS13, ending: 'fin' });
      await srv.conns[0].closed;
      expect((await removed).sort()).toEqual((await added).sort());
      expect(ctx.stats().number).toBe(0);
    } finally {
      await srv.close();
    }
  });
});
