// One session cache for every core: a SecureContext shared across worker threads (share/fromShared), one
// port served by N threads (createServer({ threads, handler })), and createServer under cluster.
import { once } from 'node:events';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';

import { SecureContext, TLSError, createServer } from '../lib';
import type { ThreadedServer } from '../lib';
import {
  CERT,
  HOST,
  PLATFORM,
  connectTls,
  delay,
  echo,
  echoes,
  onlyWhere,
  until,
  useServerFixture,
  within,
  visit,
} from './server-helpers';

const fx = useServerFixture();
const FIXTURES = path.join(__dirname, 'fixtures');

interface Listening {
  type: 'listening';
  port: number;
  handle: ReturnType<SecureContext['share']>;
}

const workers: Worker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) {
    const exited = once(w, 'exit');
    w.postMessage('close');
    await within(exited, 10000, 'worker exit');
  }
});

async function startWorker(data: object): Promise<{ worker: Worker; port: number; handle: Listening['handle'] }> {
  const worker = new Worker(path.join(FIXTURES, 'shared-context-worker.js'), { workerData: data });
  workers.push(worker);
  const m = await within(
    new Promise<Listening>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    }),
    10000,
    'worker listening',
  );
  return { worker, port: m.port, handle: m.handle };
}

function ask<T>(worker: Worker, what: string): Promise<T> {
  return within(
    new Promise<T>((resolve) => {
      worker.once('message', resolve);
      worker.postMessage(what);
    }),
    10000,
    `worker ${what}`,
  );
}

describe('share() / SecureContext.fromShared()', () => {
  test.each(['TLSv1.2', 'TLSv1.3'] as const)(
    '%s: a session made in one thread resumes in another, both ways',
    async (version) => {
      const context = new SecureContext({ ...CERT });
      const main = await fx.start({ context }, echo);
      const { port } = await startWorker({ handle: context.share() });
      const fromWorker = await visit(port, version);
      expect(fromWorker.reused).toBe(false);
      expect((await visit(main.port, version, fromWorker.session)).reused).toBe(true);
      const fromMain = await visit(main.port, version);
      expect((await visit(port, version, fromMain.session)).reused).toBe(true);
      // One cache: the main thread's context counts the worker's hits too.
      expect(context.stats().hits).toBe(2);
    },
  );

  test('stats(), flush() and sessionAdded are the same cache seen from every thread', async () => {
    const context = new SecureContext({ ...CERT });
    const added: string[] = [];
    context.on('sessionAdded', (id) => added.push(id));
    const { worker, port } = await startWorker({ handle: context.share(), events: true });
    await visit(port, 'TLSv1.2');
    await until(() => added.length === 1, 5000, 'sessionAdded in the main thread');
    const seen = await ask<{ cache: { number: number }; events: string[] }>(worker, 'stats');
    expect(seen.cache.number).toBe(1);
    expect(seen.events).toEqual(added); // delivered in the worker too
    expect(context.stats().number).toBe(1);
    await ask(worker, 'flush');
    expect(context.stats().number).toBe(0);
  });

  test('the creating thread exits first: the context lives on in the thread that holds it', async () => {
    const { worker, port, handle } = await startWorker({ create: { ...CERT } });
    const context = SecureContext.fromShared(handle);
    const first = await visit(port, 'TLSv1.2');
    const exited = once(worker, 'exit');
    worker.postMessage('close');
    workers.splice(workers.indexOf(worker), 1);
    await within(exited, 10000, 'creator exit');
    const main = await fx.start({ context }, echo);
    expect((await visit(main.port, 'TLSv1.2', first.session)).reused).toBe(true);
    expect(context.stats().hits).toBe(1);
  });

  test('a handle after every holder let go, of another process, or not a handle: clear errors', async () => {
    const { worker, handle } = await startWorker({ create: { ...CERT } });
    const exited = once(worker, 'exit');
    worker.postMessage('close');
    workers.splice(workers.indexOf(worker), 1);
    await within(exited, 10000, 'creator exit');
    const released = thrownBy(() => SecureContext.fromShared(handle));
    expect(released.code).toBe('ERR_OSC_SHARED_RELEASED');
    const foreign = thrownBy(() => SecureContext.fromShared({ ...handle, pid: process.pid + 1 }));
    expect(foreign.code).toBe('ERR_OSC_SHARED_FOREIGN');
    expect(() => SecureContext.fromShared({ id: 'x' } as never)).toThrow(TypeError);
    expect(() => SecureContext.fromShared(null as never)).toThrow(TypeError);
    // share() of a live context returns the same handle each time, and it goes through structured clone.
    const context = new SecureContext({ ...CERT });
    expect(structuredClone(context.share())).toEqual(context.share());
  });
});

function thrownBy(fn: () => unknown): TLSError {
  try {
    fn();
  } catch (err) {
    return err as TLSError;
  }
  throw new Error('did not throw');
}

describe('createServer({ threads, handler })', () => {
  const handler = path.join(FIXTURES, 'echo-handler.js');
  let server: ThreadedServer | null = null;
  afterEach(async () => {
    if (server?.listening) await within(new Promise((r) => server!.close(() => r(undefined))), 20000, 'threaded close');
    server = null;
  });

  // The threads share one port through SO_REUSEPORT.
  const threadsTest = onlyWhere(test, PLATFORM.reusePort, 'no SO_REUSEPORT, which threads need to share a port');

  async function startThreaded(threads = 2): Promise<number> {
    server = createServer({ ...CERT, threads, handler });
    await within(new Promise<void>((r) => server!.listen(0, HOST, r)), 20000, 'threads listening');
    return server.address()!.port;
  }

  threadsTest.each(['TLSv1.2', 'TLSv1.3'] as const)(
    '%s: 200 sequential reconnects through one port on 2 threads all resume; both threads serve',
    async (version) => {
      const port = await startThreaded(2);
      let { session } = await visit(port, version);
      let resumed = 0;
      for (let i = 0; i < 200; i++) {
        const v = await visit(port, version, session);
        if (v.reused) resumed++;
        session = v.session;
      }
      expect(resumed).toBe(200);
      const per = server!.threadStats();
      expect(per.length).toBe(2);
      // Only Linux spreads connections over SO_REUSEPORT listeners; macOS gives them all to one thread.
      if (PLATFORM.reusePortBalances) for (const s of per) expect(s.handshakes).toBeGreaterThan(0);
      const total = server!.stats();
      expect(total.handshakes).toBe(201);
      expect(total.resumed).toBe(200);
      await until(() => server!.stats().connections === 0, 5000, 'connections to close');
      expect(server!.context.stats().hits).toBe(200);
    },
  );

  threadsTest('a thread that throws is reported and replaced; the port keeps serving', async () => {
    const port = await startThreaded(2);
    const errors: Array<[Error, number]> = [];
    server!.on('threadError', (err, thread) => errors.push([err, thread]));
    const c = await connectTls({ port });
    c.on('error', () => undefined);
    c.write('crash');
    await until(() => errors.length === 1, 10000, 'threadError');
    expect(errors[0][0].message).toMatch(/handler crashed/);
    await delay(200);
    for (let i = 0; i < 10; i++) {
      const v = await visit(port, 'TLSv1.2');
      expect(v.reused).toBe(false);
    }
    expect(server!.listening).toBe(true);
  });

  threadsTest('close() drains every thread: it waits for open connections, then close fires', async () => {
    const port = await startThreaded(2);
    const c = await connectTls({ port });
    let closed = false;
    server!.close(() => (closed = true));
    await delay(300);
    expect(closed).toBe(false);
    await echoes(c, 'still here');
    c.end();
    await until(() => closed, 10000, 'threaded server close');
    expect(server!.stats()).toMatchObject({ connections: 0, pendingHandshakes: 0 });
  });

  test('options are checked: threads range, handler, no listener argument', () => {
    expect(() => createServer({ ...CERT, threads: 0, handler })).toThrow(RangeError);
    expect(() => createServer({ ...CERT, threads: 2, handler: 'relative.js' })).toThrow(/absolute path/);
    expect(() =>
      (createServer as (...a: unknown[]) => unknown)({ ...CERT, threads: 2, handler }, () => undefined),
    ).toThrow(/handler module/);
  });
});

describe('cluster', () => {
  onlyWhere(
    test,
    PLATFORM.adopt,
    'Server.adopt(), which takes the sockets of cluster workers, is not implemented',
  )('createServer().listen(0) in 2 cluster workers: no EADDRINUSE, both serve', async () => {
    const child = spawn(process.execPath, [path.join(FIXTURES, 'cluster-server.js')], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      const [line] = (await within(once(child.stdout, 'data'), 20000, 'cluster listening')) as [Buffer];
      const { port, pids, error } = JSON.parse(line.toString()) as { port: number; pids: number[]; error?: string };
      expect(error).toBeUndefined();
      const served = new Set<string>();
      for (let i = 0; i < 40 && served.size < 2; i++) {
        const c = await connectTls({ port });
        const [data] = (await within(once(c, 'data'), 5000, 'pid')) as [Buffer];
        served.add(data.toString());
        c.destroy();
      }
      expect([...served].sort()).toEqual(pids.map(String).sort());
      child.stdin.write('stop\n');
      const [code] = await within(once(child, 'exit'), 20000, 'cluster exit');
      expect(code).toBe(0);
    } finally {
      child.kill();
    }
  });
});
