// The second tier: sessions across processes through a real redis-server (started here on a free port),
// with ioredis and node-redis, real clients (tls.connect, openssl s_client), and the faults a store has:
// paused, stopped, restarted, flushed, garbage and foreign blobs, a wrong key, expiry.
import { ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import tls from 'node:tls';

import Redis from 'ioredis';

import { RedisStore, SecureContext, SessionStore, createServer, wrap } from '../lib';
import type { Server } from '../lib';
import { CERT, HOST, delay, echo, echoes, sh, until, within, visit } from './server-helpers';

jest.setTimeout(60000);

const STORE_KEY = randomBytes(32);
const FIXTURE = path.join(__dirname, 'fixtures', 'store-server.js');

let redisPort = 0;
let redisProc: ChildProcess | null = null;
let redis: Redis;
let dir: string;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, HOST, r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function startRedis(): Promise<void> {
  redisProc = spawn('redis-server', ['--port', String(redisPort), '--bind', HOST, '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const probe = new Redis({ port: redisPort, host: HOST, lazyConnect: true, maxRetriesPerRequest: 0 });
  const end = Date.now() + 10000;
  for (;;) {
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch {
      probe.disconnect();
      if (Date.now() > end) throw new Error('redis-server did not start');
      await delay(50);
    }
  }
  probe.disconnect();
}

/** The test's own client is connected (it reconnects by itself after a restart). */
async function redisReady(): Promise<void> {
  await until(() => redis.status === 'ready', 10000, 'the Redis client to be ready');
}

async function stopRedis(): Promise<void> {
  if (!redisProc) return;
  const p = redisProc;
  redisProc = null;
  p.kill('SIGCONT');
  p.kill('SIGKILL');
  await once(p, 'exit');
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'osc-store-'));
  redisPort = await freePort();
  await startRedis();
  redis = new Redis({
    port: redisPort,
    host: HOST,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => 50,
  });
  await redisReady();
});

afterAll(async () => {
  redis.disconnect();
  await stopRedis();
  rmSync(dir, { recursive: true, force: true });
});

const servers: Server[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    if (s.listening) await new Promise((r) => s.close(r));
  }
  for (const c of children.splice(0)) {
    c.kill('SIGKILL');
    if (c.exitCode === null) await once(c, 'exit');
  }
  if (!redisProc) await startRedis();
  await redisReady();
  await redis.flushall();
});

function contextA(
  options: Partial<ConstructorParameters<typeof SecureContext>[0]> = {},
  store: SessionStore = new RedisStore(redis),
): SecureContext {
  return new SecureContext({
    ...CERT,
    serviceName: 'store-test',
    store,
    storeKey: STORE_KEY,
    storeTimeout: 200,
    ...options,
  });
}

async function serverA(
  options: Parameters<typeof contextA>[0] = {},
  extra: Record<string, unknown> = {},
): Promise<Server> {
  const server = createServer({ context: contextA(options), ...extra }, echo);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, HOST, r));
  return server;
}

interface ProcessB {
  port: number;
  stats(): Promise<{ store: Record<string, number | string>; hits: number }>;
}

/** Process B: another node process, its own context and cache, the same Redis. */
async function processB(options: Record<string, unknown> = {}): Promise<ProcessB> {
  const child = spawn(
    process.execPath,
    [
      FIXTURE,
      JSON.stringify({ redisPort, client: 'ioredis', storeKey: STORE_KEY.toString('hex'), ...CERT, ...options }),
    ],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  const lines = readline.createInterface({ input: child.stdout! });
  const next = () => within(once(lines, 'line') as Promise<[string]>, 15000, 'process B').then(([l]) => JSON.parse(l));
  const { port } = await next();
  return {
    port,
    stats: async () => {
      child.stdin!.write('stats\n');
      return (await next()).stats;
    },
  };
}

/** The Redis key of a session (RedisStore's prefix, then the tier's: a digest of the id context, the id). */
function keyOf(context: SecureContext, id: Buffer): string {
  return `osc:${createHash('sha256').update(context.sessionIdContext).digest('hex').slice(0, 16)}:${id.toString('hex')}`;
}

describe('a session made in process A resumes in process B through Redis', () => {
  test.each([
    ['TLSv1.2', 'ioredis'],
    ['TLSv1.3', 'ioredis'],
    ['TLSv1.2', 'node-redis'],
    ['TLSv1.3', 'node-redis'],
  ] as const)('%s, B on %s: tls.connect({ session })', async (version, client) => {
    const a = await serverA();
    const b = await processB({ client });
    const first = await visit(a.address()!.port, version);
    expect(first.reused).toBe(false);
    await written(a.context);
    const second = await visit(b.port, version, first.session);
    expect(second.reused).toBe(true);
    const st = await b.stats();
    expect(st.store.hits).toBe(1);
    expect(st.hits).toBe(1); // OpenSSL resumed it from B's own cache, where the store put it
    // Now in B's internal cache: the next resumption costs no store lookup.
    const third = await visit(b.port, version, second.session);
    expect(third.reused).toBe(true);
    expect((await b.stats()).store.hits).toBe(1);
  });

  test.each(['tls1_2', 'tls1_3'])(
    'openssl s_client -%s: -sess_out against A, -sess_in against B: Reused',
    async (flag) => {
      const a = await serverA();
      const b = await processB();
      const file = path.join(dir, `${flag}.pem`);
      const client = (port: number, io: string) =>
        sh(`(sleep 0.5; echo hi; sleep 0.5) | openssl s_client -connect ${HOST}:${port} -${flag} ${io} ${file}`, 20000);
      const first = await client(a.address()!.port, '-sess_out');
      expect(first.stdout).toMatch(/^New, TLSv1\.[23]/m);
      await written(a.context);
      const second = await client(b.port, '-sess_in');
      expect(second.stdout).toMatch(/^Reused, TLSv1\.[23]/m);
      expect(second.stdout).toMatch(/^hi$/m);
    },
  );
});

test.each(['TLSv1.2', 'TLSv1.3'] as const)(
  '%s: wrap() over net sockets resumes from the store too',
  async (version) => {
    const context = contextA();
    const server = net.createServer((socket) => {
      const conn = wrap(socket, { context });
      conn.on('error', () => undefined);
      conn.pipe(conn);
    });
    await new Promise<void>((r) => server.listen(0, HOST, r));
    try {
      const b = await processB();
      const { session } = await visit(b.port, version);
      await writtenB(b);
      expect((await visit((server.address() as net.AddressInfo).port, version, session)).reused).toBe(true);
      expect(context.stats().store!.hits).toBe(1);
      // and what wrap() makes is written behind for the others
      const mine = await visit((server.address() as net.AddressInfo).port, version);
      await written(context);
      expect((await visit(b.port, version, mine.session)).reused).toBe(true);
    } finally {
      server.close();
    }
  },
);

describe('faults: the handshake goes on, counters say so, nothing crashes', () => {
  test('storeError: reported, at most once a second, while the handshakes go on', async () => {
    const a = await serverA({ storeTimeout: 100 });
    const errors: Error[] = [];
    a.context.on('storeError', (err) => errors.push(err));
    const { session } = await processB().then(async (b) => visit(b.port, 'TLSv1.2'));
    await stopRedis();
    for (let i = 0; i < 4; i++) expect((await visit(a.address()!.port, 'TLSv1.2', session)).reused).toBe(false);
    expect(errors.length).toBe(1);
    expect(a.context.stats().store!.errors + a.context.stats().store!.timeouts).toBeGreaterThanOrEqual(1);
  });

  async function sessionFromA(version: tls.SecureVersion = 'TLSv1.2'): Promise<{ a: Server; session: Buffer }> {
    const a = await serverA();
    const { session } = await visit(a.address()!.port, version);
    // The session is in Redis (not just sent: a client still reconnecting fails the write).
    await untilAsync(async () => (await redis.dbsize()) > 0, 'the session in Redis');
    return { a, session };
  }

  test('Redis paused (SIGSTOP): the handshake waits at most storeTimeout, then goes on in full', async () => {
    const { session } = await sessionFromA();
    const b = await processB({ storeTimeout: 150 });
    redisProc!.kill('SIGSTOP');
    try {
      const v = await visit(b.port, 'TLSv1.2', session);
      expect(v.reused).toBe(false);
      expect(v.ms).toBeLessThan(2000);
      expect((await b.stats()).store.timeouts).toBe(1);
    } finally {
      redisProc!.kill('SIGCONT');
    }
  });

  test('Redis stopped, then restarted: full handshakes, errors counted, the breaker opens and later closes', async () => {
    const { session } = await sessionFromA();
    const b = await processB({ storeTimeout: 150, storeRetryAfter: 500 });
    await stopRedis();
    for (let i = 0; i < 7; i++) expect((await visit(b.port, 'TLSv1.2', session)).reused).toBe(false);
    const st = await b.stats();
    expect((st.store.errors as number) + (st.store.timeouts as number)).toBeGreaterThanOrEqual(5);
    expect(st.store.breaker).toBe('open');
    expect(st.store.skipped).toBeGreaterThan(0);
    await startRedis();
    await redisReady();
    // A new session through A (Redis was empty after the restart), then B resumes it once the breaker probes.
    const again = await sessionFromA();
    let resumed = false;
    for (let i = 0; i < 40 && !resumed; i++) {
      resumed = (await visit(b.port, 'TLSv1.2', again.session)).reused;
      if (!resumed) await delay(250);
    }
    expect(resumed).toBe(true);
    expect((await b.stats()).store.breaker).toBe('closed');
  });

  test('Redis flushed: a miss, a full handshake', async () => {
    const { session } = await sessionFromA();
    const b = await processB();
    await redis.flushall();
    expect((await visit(b.port, 'TLSv1.2', session)).reused).toBe(false);
    expect((await b.stats()).store.misses).toBe(1);
  });

  test('garbage and foreign-key blobs under the key, and a wrong storeKey on B: rejected, never resumed', async () => {
    const a = await serverA();
    const added: string[] = [];
    a.context.on('sessionAdded', (id) => added.push(id));
    const { session } = await visit(a.address()!.port, 'TLSv1.2');
    await until(() => added.length === 1 && a.context.stats().store!.writes > 0, 5000, 'the session and its write');
    const key = keyOf(a.context, Buffer.from(added[0], 'hex'));
    const good = await redis.get(key);
    expect(good).not.toBeNull();
    const b = await processB();
    // garbage
    await redis.set(key, randomBytes(120).toString('base64'));
    expect((await visit(b.port, 'TLSv1.2', session)).reused).toBe(false);
    // sealed with another key
    const foreign = contextA({ storeKey: randomBytes(32) }, new RedisStore(redis));
    const sealed = (foreign.tier as unknown as { seal(d: Buffer, id: Buffer): Buffer }).seal(
      Buffer.from('x'),
      Buffer.from(added[0], 'hex'),
    );
    await redis.set(key, sealed.toString('base64'));
    expect((await visit(b.port, 'TLSv1.2', session)).reused).toBe(false);
    expect((await b.stats()).store.rejected).toBe(2);
    // the genuine blob, but B has another key
    await redis.set(key, good!);
    const wrongKey = await processB({ storeKey: randomBytes(32).toString('hex') });
    expect((await visit(wrongKey.port, 'TLSv1.2', session)).reused).toBe(false);
    expect((await wrongKey.stats()).store.rejected).toBe(1);
    // and with the right key among B's (rotation: the first encrypts, every one decrypts) it resumes
    const rotated = await processB({ storeKey: [randomBytes(32).toString('hex'), STORE_KEY.toString('hex')] });
    expect((await visit(rotated.port, 'TLSv1.2', session)).reused).toBe(true);
  });
});

describe('expiry and removal', () => {
  test('a session past its timeout is not resumed from the store (Redis TTL; and a store that keeps it)', async () => {
    // A store that ignores the TTL: OpenSSL's own expiry must still refuse the session.
    const map = new Map<string, Buffer>();
    const keeping: SessionStore = {
      get: async (k) => map.get(k),
      set: async (k, v) => void map.set(k, v),
      delete: async (k) => void map.delete(k),
    };
    for (const store of [new RedisStore(redis), keeping]) {
      const a = createServer({ context: contextA({ sessionTimeout: 1 }, store) }, echo);
      const b = createServer({ context: contextA({ sessionTimeout: 1 }, store) }, echo);
      servers.push(a, b);
      await new Promise<void>((r) => a.listen(0, HOST, r));
      await new Promise<void>((r) => b.listen(0, HOST, r));
      const { session } = await visit(a.address()!.port, 'TLSv1.2');
      await delay(2200);
      expect((await visit(b.address()!.port, 'TLSv1.2', session)).reused).toBe(false);
      const st = b.context.stats().store!;
      expect(st.hits).toBe(0);
      expect(st.misses + st.rejected).toBe(1);
    }
  });

  test('remove() and the drop policy delete from the store too', async () => {
    const a = await serverA({}, { uncleanClose: 'drop' });
    const added: string[] = [];
    a.context.on('sessionAdded', (id) => added.push(id));
    // remove(): the key goes
    await visit(a.address()!.port, 'TLSv1.2');
    await until(() => added.length === 1, 5000, 'sessionAdded');
    const key1 = keyOf(a.context, Buffer.from(added[0], 'hex'));
    await until(() => a.context.stats().store!.writes === 1, 5000, 'write');
    await untilAsync(async () => (await redis.exists(key1)) === 1, 'the key');
    expect(a.context.remove(added[0])).toBe(true);
    await untilAsync(async () => (await redis.exists(key1)) === 0, 'the key to go after remove()');
    // drop: a client that leaves with a FIN, no close_notify
    const raw = net.connect(a.address()!.port, HOST);
    const c = tls.connect({ socket: raw, rejectUnauthorized: false, maxVersion: 'TLSv1.2' });
    await once(c, 'secureConnect');
    await echoes(c, 'x');
    await until(() => added.length === 2, 5000, 'second sessionAdded');
    const key2 = keyOf(a.context, Buffer.from(added[1], 'hex'));
    await untilAsync(async () => (await redis.exists(key2)) === 1, 'the second key');
    raw.end();
    await untilAsync(async () => (await redis.exists(key2)) === 0, 'the key to go after an unclean close under drop');
    expect(a.context.stats().store!.deletes).toBeGreaterThanOrEqual(2);
    c.destroy();
  });
});

describe('exportSessions() / importSessions(): a warm restart without a store', () => {
  test.each(['TLSv1.2', 'TLSv1.3'] as const)(
    '%s: sessions exported from one context resume in a new one',
    async (version) => {
      const key = randomBytes(32);
      const old = createServer({ context: new SecureContext({ ...CERT, serviceName: 'warm' }) }, echo);
      servers.push(old);
      await new Promise<void>((r) => old.listen(0, HOST, r));
      const { session } = await visit(old.address()!.port, version);
      const dump = old.context.exportSessions(key);
      expect(old.context.stats().number).toBeGreaterThan(0);

      const fresh = new SecureContext({ ...CERT, serviceName: 'warm' });
      expect(fresh.importSessions(dump, randomBytes(32))).toBe(0); // another key opens nothing
      expect(new SecureContext({ ...CERT, serviceName: 'other' }).importSessions(dump, key)).toBe(0); // another service
      expect(fresh.importSessions(dump, key)).toBe(old.context.stats().number);
      const next = createServer({ context: fresh }, echo);
      servers.push(next);
      await new Promise<void>((r) => next.listen(0, HOST, r));
      expect((await visit(next.address()!.port, version, session)).reused).toBe(true);
    },
  );

  test('bad input: no key, a buffer of something else, tickets on', () => {
    const ctx = new SecureContext({ ...CERT });
    expect(() => ctx.exportSessions()).toThrow(/needs a 32-byte key/);
    expect(() => ctx.importSessions(Buffer.from('nonsense'), STORE_KEY)).toThrow(/made by exportSessions/);
    expect(() => new SecureContext({ ...CERT, tickets: true }).exportSessions(STORE_KEY)).toThrow(/tickets off/);
    expect(ctx.importSessions(ctx.exportSessions(STORE_KEY), STORE_KEY)).toBe(0); // empty cache
  });
});

describe('the store under the multi-core setups', () => {
  test('a threaded server (2 threads, one context): a session made in process B resumes on any thread', async () => {
    const threaded = createServer({
      ...CERT,
      serviceName: 'store-test',
      store: new RedisStore(redis),
      storeKey: STORE_KEY,
      storeTimeout: 500,
      threads: 2,
      handler: path.join(__dirname, 'fixtures', 'echo-handler.js'),
    });
    await new Promise<void>((r) => threaded.listen(0, HOST, r));
    try {
      const b = await processB();
      let resumed = 0;
      for (let i = 0; i < 6; i++) {
        const { session } = await visit(b.port, 'TLSv1.2');
        await writtenB(b);
        if ((await visit(threaded.address()!.port, 'TLSv1.2', session)).reused) resumed++;
      }
      expect(resumed).toBe(6);
      expect(threaded.context.stats().store!.hits).toBe(6);
    } finally {
      await new Promise((r) => threaded.close(() => r(undefined)));
    }
  });

  test('cluster, 2 workers, a context each: 30 sequential reconnects all resume, on both workers', async () => {
    const child = spawn(
      process.execPath,
      [
        path.join(__dirname, 'fixtures', 'cluster-store-server.js'),
        JSON.stringify({ redisPort, storeKey: STORE_KEY.toString('hex'), ...CERT }),
      ],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    children.push(child);
    const [line] = (await within(once(child.stdout!, 'data'), 20000, 'cluster listening')) as [Buffer];
    const { port, pids } = JSON.parse(line.toString()) as { port: number; pids: number[] };
    const served = new Set<string>();
    let session: Buffer | undefined;
    let resumed = 0;
    for (let i = 0; i < 31; i++) {
      const c = tls.connect({ host: HOST, port, rejectUnauthorized: false, maxVersion: 'TLSv1.2', session });
      await within(once(c, 'secureConnect'), 5000, 'secureConnect');
      if (i > 0 && c.isSessionReused()) resumed++;
      session = c.getSession();
      c.write('who');
      const [pid] = (await within(once(c, 'data'), 5000, 'pid')) as [Buffer];
      served.add(pid.toString());
      c.destroy();
      // The first (full) handshake's session reaches Redis before the reconnects; resumed TLS 1.2
      // connections write nothing new.
      if (i === 0) await untilAsync(async () => (await redis.dbsize()) > 0, 'the session in Redis');
    }
    expect(resumed).toBe(30);
    expect([...served].sort()).toEqual(pids.map(String).sort());
    child.stdin!.write('stop\n');
    await within(once(child, 'exit'), 20000, 'cluster exit');
  });
});

describe('options', () => {
  test('a store without storeKey, a bad key, a store with tickets, storeKey alone: TypeErrors', () => {
    const store = new RedisStore(redis);
    expect(() => new SecureContext({ ...CERT, store })).toThrow(/needs storeKey/);
    expect(() => new SecureContext({ ...CERT, store, storeKey: Buffer.alloc(16) })).toThrow(/32-byte/);
    expect(() => new SecureContext({ ...CERT, store, storeKey: STORE_KEY, tickets: true })).toThrow(
      /tickets must stay off/,
    );
    expect(() => new SecureContext({ ...CERT, storeKey: STORE_KEY })).toThrow(/go with store/);
    expect(() => new SecureContext({ ...CERT, store: {} as never, storeKey: STORE_KEY })).toThrow(/SessionStore/);
    expect(() => new RedisStore({} as never)).toThrow(TypeError);
  });
});

/** The context's write-behind reached the store (sent, answered, none failed). */
async function written(context: SecureContext): Promise<void> {
  await until(
    () => {
      const st = context.stats().store!;
      return st.writes > 0 && st.pendingWrites === 0;
    },
    5000,
    'the write-behind',
  );
  expect(context.stats().store!.writeErrors).toBe(0);
}

/** Process B's write-behind reached the store. */
async function writtenB(b: ProcessB): Promise<void> {
  await untilAsync(async () => {
    const st = (await b.stats()).store;
    return (st.writes as number) > 0 && st.pendingWrites === 0;
  }, "B's write-behind");
}

async function untilAsync(cond: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(20);
  }
}
