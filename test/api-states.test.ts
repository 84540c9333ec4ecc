// Every public method in every state: before listen, resolving, listening, closing, closed; connections
// before and after `secure`, after `end`, after `destroy`. None may abort, segfault or hang. (Issue:
// server.close() twice while listening aborted in uv_close.)
import { Duplex } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import binding from '../lib/binding';
import { SecureContext, ShutdownFlags, TLSConnection, createServer, wrap } from '../lib';
import { CERT, HOST, connectTls, echo, echoes, run, until, useServerFixture, within } from './server-helpers';

setFlagsFromString('--expose-gc'); // the last test checks that the server lets go of its connections

const fx = useServerFixture();

type Err = (Error & { code?: string }) | undefined;

function closeResult(server: ReturnType<typeof createServer>): Promise<Err> {
  return within(new Promise<Err>((resolve) => server.close((err) => resolve(err as Err))), 10000, 'close callback');
}

describe('Server in every state', () => {
  test('before listen: address null, stats zero, close calls back with ERR_SERVER_NOT_RUNNING and emits close', async () => {
    const server = createServer(CERT);
    expect(server.address()).toBeNull();
    expect(server.listening).toBe(false);
    expect(server.stats()).toMatchObject({ accepted: 0, connections: 0, pendingHandshakes: 0 });
    server.closeAllConnections();
    const closes: number[] = [];
    server.on('close', () => closes.push(1));
    expect((await closeResult(server))?.code).toBe('ERR_SERVER_NOT_RUNNING');
    expect(closes.length).toBe(1);
  });

  test('close() twice while listening: the first closes, the second gets ERR_SERVER_NOT_RUNNING; one close event', async () => {
    const s = await fx.start({}, echo);
    const closes: number[] = [];
    s.server.on('close', () => closes.push(1));
    const first = closeResult(s.server);
    const second = closeResult(s.server);
    expect(s.server.listening).toBe(false);
    expect(await first).toBeUndefined();
    expect((await second)?.code).toBe('ERR_SERVER_NOT_RUNNING');
    expect(closes.length).toBe(1);
    // Closed: once more, and a listen() again serves.
    expect((await closeResult(s.server))?.code).toBe('ERR_SERVER_NOT_RUNNING');
    await within(new Promise<void>((r) => s.server.listen(0, HOST, r)), 5000, 'listening again');
    const c = await connectTls({ port: s.server.address()!.port });
    c.destroy();
    expect(await closeResult(s.server)).toBeUndefined();
  });

  test('closing with an open connection: listen() throws ERR_SERVER_ALREADY_LISTEN, close() waits with an error, address null', async () => {
    const s = await fx.start({}, echo);
    const c = await connectTls({ port: s.port });
    await until(() => s.connections.length === 1, 5000, 'the connection');
    const first = closeResult(s.server);
    const second = closeResult(s.server);
    expect(s.server.address()).toBeNull();
    expect(() => s.server.listen(0, HOST)).toThrow(expect.objectContaining({ code: 'ERR_SERVER_ALREADY_LISTEN' }));
    let done = false;
    void first.then(() => (done = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(done).toBe(false); // the open connection holds the close
    c.end();
    expect(await first).toBeUndefined();
    expect((await second)?.code).toBe('ERR_SERVER_NOT_RUNNING');
  });

  test('listen() while listening throws ERR_SERVER_ALREADY_LISTEN and keeps serving', async () => {
    const s = await fx.start({}, echo);
    expect(() => s.server.listen(0, HOST)).toThrow(expect.objectContaining({ code: 'ERR_SERVER_ALREADY_LISTEN' }));
    const c = await connectTls({ port: s.port });
    c.destroy();
  });

  test('close() while the host name is still being looked up: no listening, close fires', async () => {
    const server = createServer(CERT);
    const events: string[] = [];
    server.on('listening', () => events.push('listening'));
    server.listen(0, 'localhost');
    expect((await closeResult(server))?.code).toBe('ERR_SERVER_NOT_RUNNING');
    await new Promise((r) => setTimeout(r, 200));
    expect(events).toEqual([]);
    expect(server.address()).toBeNull();
  });

  test('a failed listen (EADDRINUSE) leaves the server idle: it can listen elsewhere', async () => {
    const s = await fx.start({}, echo);
    const other = createServer(CERT);
    const err = await within(
      new Promise<Err>((resolve) => {
        other.once('error', (e) => resolve(e as Err));
        other.listen(s.port, HOST);
      }),
      5000,
      'EADDRINUSE',
    );
    expect(err?.code).toBe('EADDRINUSE');
    await within(new Promise<void>((r) => other.listen(0, HOST, r)), 5000, 'listening elsewhere');
    expect(await closeResult(other)).toBeUndefined();
  });
});

describe('TLSConnection in every state', () => {
  function exercise(conn: TLSConnection): void {
    conn.setShutdown(ShutdownFlags.SENT | ShutdownFlags.RECEIVED);
    expect(typeof conn.getShutdown()).toBe('number');
    conn.setNoDelay(true);
    conn.setKeepAlive(true, 1000);
    conn.setTimeout(0);
    conn.pause();
    conn.resume();
    void conn.session;
    void conn.remoteAddress;
  }

  test('native server: methods after end(), after destroy(), after close; destroy and end twice', async () => {
    const seen: TLSConnection[] = [];
    const s = await fx.start({}, (conn) => seen.push(conn));
    const c = await connectTls({ port: s.port });
    c.on('error', () => undefined);
    await until(() => seen.length === 1, 5000, 'the connection');
    const conn = seen[0];
    exercise(conn);
    conn.end('bye');
    exercise(conn);
    conn.end();
    conn.destroy();
    exercise(conn);
    conn.destroy();
    const info = await within(new Promise((r) => conn.once('close', r)), 5000, 'close');
    expect(info).toMatchObject({ ending: 'local' });
    exercise(conn);
    expect(conn.getShutdown()).toBe(0);
    const errors: Error[] = [];
    conn.on('error', (e) => errors.push(e));
    conn.write('late', () => undefined);
    await new Promise((r) => setImmediate(r));
    expect(errors.length).toBeLessThanOrEqual(1); // the stream's own ERR_STREAM_DESTROYED, if any
    c.destroy();
    await until(() => s.server.stats().connections === 0, 5000, 'connections to close');
  });

  test('wrap(): methods before the handshake, writes queued until secure, destroy before secure', async () => {
    const context = new SecureContext(CERT);
    const duplex = new Duplex({
      read() {},
      write(_c, _e, cb) {
        cb();
      },
    });
    const conn = wrap(duplex, { context });
    exercise(conn);
    expect(conn.secure).toBe(false);
    conn.write('queued');
    conn.destroy();
    const info = await within(new Promise((r) => conn.once('close', r)), 5000, 'close');
    expect(info).toEqual({ clean: false, ending: 'local' });
    exercise(conn);
  });
});

describe('the native classes refuse bad arguments with a JS error, never an abort', () => {
  test('TcpServer without callbacks, Engine without a context, SecureContext without options', () => {
    const ctx = new SecureContext(CERT);
    expect(() => new binding.TcpServer(ctx.native, {}, {})).toThrow(/callback 'connection' is not a function/);
    // Errors of the addon come from the main realm, not jest's: matched by message.
    expect(() => new binding.TcpServer({}, {}, {})).toThrow(/expected a native SecureContext/);
    expect(() => new binding.Engine({} as never, 0)).toThrow(/expected a native SecureContext/);
    expect(() => new binding.Engine(ctx.native, 7)).toThrow(/bad policy/);
    const engine = new binding.Engine(ctx.native, 0);
    expect(() => engine.feed('text' as never)).toThrow(/feed expects a Buffer/);
    expect(() => engine.write(['text'] as never)).toThrow(/write expects an array of Buffers/);
    expect(() => engine.finish(9)).toThrow(/bad ending/);
    expect(engine.finish(3)).toEqual([
      4,
      false,
      'ERR_OSC_HANDSHAKE',
      'connection closed by the server during the handshake',
    ]);
    expect(engine.finish(0)).toEqual(engine.finish(3)); // the first verdict stands
  });
});

describe('keylog and ticket keys in every state', () => {
  test('keylog listeners and setTicketKeys before listen, while listening, after close', async () => {
    const { randomBytes } = await import('node:crypto');
    const s = await fx.start({ tickets: true }, echo);
    const lines: Buffer[] = [];
    const listener = (line: Buffer) => lines.push(line);
    s.server.on('keylog', listener).off('keylog', listener).on('keylog', listener);
    const keys = randomBytes(48);
    s.server.setTicketKeys(keys);
    const c = await connectTls({ port: s.port });
    await until(() => lines.length > 0, 5000, 'key log lines');
    c.destroy();
    expect(await closeResult(s.server)).toBeUndefined();
    s.server.off('keylog', listener);
    s.server.on('keylog', listener);
    s.server.setTicketKeys(randomBytes(48));
    expect(s.server.getTicketKeys()).toHaveLength(48);
    expect(s.server.getTicketKeys().equals(keys)).toBe(false);
    // wrap(): a listener added and removed before any byte, and after the connection is gone.
    const a = new Duplex({
      read() {},
      write(_c, _e, cb) {
        cb();
      },
    });
    const conn = wrap(a, { cert: CERT.cert, key: CERT.key });
    conn.on('keylog', listener).off('keylog', listener);
    conn.destroy();
    conn.on('keylog', listener).off('keylog', listener);
  });
});

describe('Server ref(), unref(), getConnections()', () => {
  const script = (calls: string) =>
    `const osc = require(${JSON.stringify(require.resolve('../dist/index.js'))});
     const s = osc.createServer(osc.generateCertificate(), () => {});
     s.listen(0, '127.0.0.1', () => { ${calls}; console.log('listening'); });`;

  test('an unref()ed listening server lets node exit by itself; ref() keeps it alive again', async () => {
    const exits = await run(process.execPath, ['-e', script('s.unref()')], { timeoutMs: 10000 });
    expect({ code: exits.code, timedOut: exits.timedOut, out: exits.stdout.trim() }).toEqual({
      code: 0,
      timedOut: false,
      out: 'listening',
    });
    const stays = await run(process.execPath, ['-e', script('s.unref(); s.ref()')], { timeoutMs: 1500 });
    expect(stays.timedOut).toBe(true);
    expect(stays.stdout.trim()).toBe('listening');
  });

  test('getConnections() counts open connections, on the next tick', async () => {
    const s = await fx.start({}, echo);
    const count = () => new Promise<number>((r) => s.server.getConnections((err, n) => r(err ? -1 : n)));
    expect(await count()).toBe(0);
    const c = await connectTls({ port: s.port });
    await until(() => s.server.stats().connections === 1, 5000, 'the connection');
    expect(await count()).toBe(1);
    c.destroy();
    expect(() => s.server.getConnections(undefined as never)).toThrow(TypeError);
  });
});

// A connection of the native server is an id in the server's table (no JS handle of its own): what JS
// never asked for while the connection was open comes with its close, stale ids do nothing, and the
// server keeps nothing of a connection once it is gone.
describe('native server connections by id', () => {
  type Transport = { id: number };
  type NativeConnections = {
    writev(id: unknown, chunks: Buffer[]): boolean;
    end(id: unknown): void;
    readStart(id: unknown): void;
    readStop(id: unknown): void;
    destroy(id: unknown): unknown;
    setShutdown(id: unknown, flags: number): void;
    getShutdown(id: unknown): number;
    setNoDelay(id: unknown, on: boolean): void;
    setKeepAlive(id: unknown, on: boolean, delay: number): void;
    facts(id: unknown): unknown;
    live(id: unknown, what: string): unknown;
  };
  const idOf = (conn: TLSConnection): number => (conn as unknown as { transport: Transport }).transport.id;
  const nativeOf = (server: ReturnType<typeof createServer>): NativeConnections =>
    (server as unknown as { native: NativeConnections }).native;

  async function accepted(port: number, seen: TLSConnection[], n: number) {
    const c = await connectTls({ port, maxVersion: 'TLSv1.2' });
    c.on('error', () => undefined);
    await until(() => seen.length === n, 5000, 'the connection');
    return { c, conn: seen[n - 1] };
  }

  for (const how of ['the peer closes', 'destroy()'] as const) {
    test(`addresses and session facts never asked for while open still answer after the close (${how})`, async () => {
      const seen: TLSConnection[] = [];
      const s = await fx.start({}, (conn) => {
        seen.push(conn);
        conn.resume(); // reads the peer's close_notify: the connection ends with it
      });
      const { c, conn } = await accepted(s.port, seen, 1);
      const closed = within(new Promise((r) => conn.once('close', r)), 5000, 'close');
      if (how === 'destroy()') conn.destroy();
      else c.end();
      await closed;
      expect(conn.remoteAddress).toBe(HOST);
      expect(conn.remotePort).toBe(c.localPort);
      expect(conn.localAddress).toBe(HOST);
      expect(conn.localPort).toBe(s.port);
      expect(conn.remoteFamily).toBe('IPv4');
      expect(conn.session).toMatchObject({ protocol: 'TLSv1.2', reused: false, alpn: null, servername: null });
      expect(conn.session?.id).toMatch(/^[0-9a-f]{64}$/);
      expect(conn.getCipher()).toEqual({
        name: c.getCipher().name,
        standardName: c.getCipher().standardName,
        version: 'TLSv1.2',
      });
      c.destroy();
    });
  }

  test('an id of a closed connection never reaches the connection that took its slot; odd ids do nothing', async () => {
    const seen: TLSConnection[] = [];
    const s = await fx.start({}, (conn) => {
      seen.push(conn);
      echo(conn);
    });
    const native = nativeOf(s.server);
    const first = await accepted(s.port, seen, 1);
    const stale = idOf(first.conn);
    first.conn.destroy();
    first.c.destroy();
    await until(() => s.server.stats().connections === 0, 5000, 'the first connection to close');
    const second = await accepted(s.port, seen, 2);
    const id = idOf(second.conn);
    expect(id).not.toBe(stale);
    expect(id % 2 ** 24).toBe(stale % 2 ** 24); // the same slot, a new generation
    for (const bad of [stale, -1, 0.5, 2 ** 60, Number.NaN, 'x', undefined, null, {}]) {
      expect(native.writev(bad, [Buffer.from('not for you')])).toBe(true);
      expect(native.destroy(bad)).toBeUndefined();
      expect(native.facts(bad)).toBeUndefined();
      expect(native.getShutdown(bad)).toBe(0);
      expect(native.live(bad, 'session')).toBeUndefined();
      native.end(bad);
      native.readStop(bad);
      native.readStart(bad);
      native.setShutdown(bad, 3);
      native.setNoDelay(bad, true);
      native.setKeepAlive(bad, true, 1);
    }
    // The second connection saw none of it: it is open, reads, and echoes.
    await echoes(second.c, 'still mine');
    expect(native.live(id, 'session')).toBeInstanceOf(Buffer);
    second.c.destroy();
    await until(() => s.server.stats().connections === 0, 5000, 'connections to close');
  });

  test('the server keeps no JS object of a connection once it closed or was destroyed', async () => {
    const gc = runInNewContext('gc') as () => void;
    const refs: Array<WeakRef<TLSConnection>> = [];
    const s = await fx.start({}, (conn) => {
      refs.push(new WeakRef(conn));
      echo(conn);
      // One in two is destroyed from JS, the others are closed by the peer.
      if (refs.length % 2 === 0) conn.once('data', () => conn.destroy());
    });
    for (let i = 0; i < 6; i++) {
      const c = await connectTls({ port: s.port });
      c.on('error', () => undefined);
      c.write('x');
      await within(new Promise((r) => c.once('close', r).once('data', () => c.end())), 5000, 'close');
    }
    await until(() => s.server.stats().connections === 0, 5000, 'connections to close');
    s.connections.length = 0; // the fixture's own list
    for (let i = 0; i < 5 && refs.some((r) => r.deref() !== undefined); i++) {
      await new Promise((r) => setTimeout(r, 20));
      gc();
    }
    expect(refs.filter((r) => r.deref() !== undefined)).toEqual([]);
  });
});
