// Lifecycle of the native server across process and worker-thread exits: the env cleanup hook must
// close sockets without calling into a dying JavaScript environment, and nothing may crash.
// The child processes and workers load the compiled package (dist/, built by `npm test` / `npx tsc`).
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { Worker } from 'node:worker_threads';

import { RunResult, closedBy, connectTls, echo, echoes, run, startServer, stopServer, within } from './server-helpers';

jest.setTimeout(60000);

const DIST = path.join(__dirname, '..', 'dist', 'index.js');

beforeAll(() => {
  expect(existsSync(DIST)).toBe(true);
});

/** Runs `node -e script` with the package path in OSC; resolves with how it exited. */
function node(script: string, ms = 30000): Promise<RunResult> {
  return run(process.execPath, ['-e', script], {
    env: { ...process.env, OSC: DIST },
    timeoutMs: ms,
    failOnTimeout: true,
  });
}

// Common prelude of the child scripts: a server on a free port, echoing, plus a connect helper.
const PRELUDE = `
const tls = require('node:tls');
const net = require('node:net');
const { createServer, generateCertificate } = require(process.env.OSC);
const { cert, key } = generateCertificate();
const conns = [];
const server = createServer({ cert, key }, (c) => { conns.push(c); c.on('error', () => {}); c.pipe(c); });
const connect = (port) => new Promise((resolve, reject) => {
  const c = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve(c));
  c.on('error', reject);
});
`;

describe('child process', () => {
  test('process.exit() with open, pending and busy connections: exit code 0, no crash', async () => {
    const r = await node(`${PRELUDE}
server.listen(0, '127.0.0.1', async () => {
  const port = server.address().port;
  const clients = await Promise.all([connect(port), connect(port), connect(port)]);
  const pending = net.connect(port, '127.0.0.1');       // a handshake in progress
  pending.on('error', () => {});
  await new Promise((r) => pending.on('connect', r));
  clients[0].write(Buffer.alloc(4 * 1024 * 1024, 1));   // data in flight both ways
  clients[0].once('data', () => {
    const st = server.stats();
    console.log('open', st.connections, 'pending', st.pendingHandshakes);
    process.exit(0);
  });
});
`);
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^open 4 pending 1$/m);
  });

  test('process.exit() from inside a secureConnection handler', async () => {
    const r = await node(`${PRELUDE}
server.on('secureConnection', () => { console.log('secure'); process.exit(0); });
server.listen(0, '127.0.0.1', () => { connect(server.address().port).catch(() => {}); });
`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('secure\n');
  });

  test('normal exit: once the server and its connections are closed the process ends by itself', async () => {
    const r = await node(`${PRELUDE}
server.listen(0, '127.0.0.1', async () => {
  const c = await connect(server.address().port);
  c.write('hello');
  c.once('data', (d) => {
    console.log('echo', d.toString());
    server.close(() => {
      const st = server.stats();
      console.log('closed', st.connections, st.handshakes);
    });
    c.end();
  });
});
process.on('exit', (code) => console.log('exit', code));
`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('echo hello\nclosed 0 1\nexit 0\n');
  });

  test('an uncaught exception in a connection handler is reported, not a native crash', async () => {
    const r = await node(`${PRELUDE}
server.on('secureConnection', () => { throw new Error('boom from handler'); });
server.listen(0, '127.0.0.1', () => { connect(server.address().port).catch(() => {}); });
`);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('boom from handler');
  });
});

describe('session event listeners at exit', () => {
  test("a session listener that throws: an uncaught exception like any listener's, not a native abort", async () => {
    const r = await node(`
const tls = require('node:tls');
const { SecureContext, createServer, generateCertificate } = require(process.env.OSC);
const context = new SecureContext(generateCertificate());
context.on('sessionAdded', () => { throw new Error('listener boom'); });
process.on('uncaughtException', (e) => { console.log('uncaught: ' + e.message); process.exit(0); });
const server = createServer({ context }, (c) => c.pipe(c));
server.listen(0, '127.0.0.1', () => {
  const c = tls.connect({ port: server.address().port, host: '127.0.0.1', rejectUnauthorized: false }, () => c.end('x'));
  c.on('data', () => {});
  c.on('error', () => {});
});
`);
    expect(r.stdout).toContain('uncaught: listener boom');
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
  });

  // At environment teardown Node finalizes thread-safe functions before (some) ObjectWrap finalizers;
  // a SecureContext must then not release its session-event function a second time (it aborted).
  test('a process with two SecureContexts listening for session events exits with code 0', async () => {
    const r = await node(`
const { SecureContext, generateCertificate } = require(process.env.OSC);
const { cert, key } = generateCertificate();
const contexts = [0, 1].map(() => new SecureContext({ cert, key }));
for (const c of contexts) c.on('sessionAdded', () => {});
console.log('made', contexts.length);
`);
    expect(r.stdout).toBe('made 2\n');
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
  });
});

describe('worker thread', () => {
  // The worker runs a server and reports its port; the main thread is the client.
  const WORKER = `
const { parentPort } = require('node:worker_threads');
const { createServer, generateCertificate } = require(${JSON.stringify(DIST)});
const { cert, key } = generateCertificate();
const server = createServer({ cert, key }, (c) => {
  c.on('error', () => {});
  c.pipe(c);
  parentPort.postMessage({ secure: server.stats().connections });
});
parentPort.on('message', (m) => {
  if (m === 'close') server.close(() => { parentPort.postMessage({ closed: true }); parentPort.close(); });
  if (m === 'closeAll') server.closeAllConnections();
  if (m === 'exit') process.exit(7);
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port }));
`;

  async function startWorker(): Promise<{ worker: Worker; port: number; messages: object[] }> {
    const worker = new Worker(WORKER, { eval: true });
    const messages: object[] = [];
    const port = await within(
      new Promise<number>((resolve, reject) => {
        worker.on('message', (m: { port?: number }) => {
          messages.push(m);
          if (m.port) resolve(m.port);
        });
        worker.once('error', reject);
      }),
      15000,
      'the worker to listen',
    );
    return { worker, port, messages };
  }

  async function mainStillServes(): Promise<void> {
    const s = await startServer({}, echo);
    try {
      const c = await connectTls({ port: s.port });
      await echoes(c, 'main');
      c.destroy();
    } finally {
      await stopServer(s.server);
    }
  }

  async function openClients(port: number, n: number): Promise<tls.TLSSocket[]> {
    const clients = await Promise.all(Array.from({ length: n }, () => connectTls({ port })));
    for (const c of clients) await echoes(c, 'w');
    return clients;
  }

  test('terminate() with open TLS connections: clients are closed, the main thread is unaffected', async () => {
    const { worker, port } = await startWorker();
    const clients = await openClients(port, 3);
    const closed = clients.map((c) => closedBy(c, 10000));
    const code = await within(worker.terminate(), 10000, 'worker.terminate()');
    expect(code).toBe(1); // terminate() resolves with exit code 1
    await within(Promise.all(closed), 10000, 'the worker connections to close');
    // The port is free again: connecting is refused.
    const refused = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    const [err] = (await within(once(refused, 'error'), 5000, 'connect error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
    await mainStillServes();
  });

  test('terminate() during a handshake and while data flows', async () => {
    const { worker, port } = await startWorker();
    const [busy] = await openClients(port, 1);
    busy.on('error', () => undefined);
    busy.write(Buffer.alloc(8 * 1024 * 1024, 2)); // the worker is echoing this when it dies
    const handshaking = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    handshaking.on('error', () => undefined);
    const closed = [closedBy(busy, 10000), closedBy(handshaking, 10000)];
    await within(once(busy, 'data'), 5000, 'echo starting');
    expect(await within(worker.terminate(), 10000, 'terminate')).toBe(1);
    await within(Promise.all(closed), 10000, 'clients closed');
    await mainStillServes();
  });

  test('process.exit(7) inside the worker with an open connection: exit code 7', async () => {
    const { worker, port } = await startWorker();
    const [c] = await openClients(port, 1);
    const closed = closedBy(c, 10000);
    const exit = once(worker, 'exit');
    worker.postMessage('exit');
    const [code] = await within(exit, 10000, 'worker exit');
    expect(code).toBe(7);
    await closed;
    await mainStillServes();
  });

  test('a worker that closes its server and connections exits by itself with code 0', async () => {
    const { worker, port, messages } = await startWorker();
    const clients = await openClients(port, 2);
    const closed = clients.map((c) => closedBy(c, 10000));
    const exit = once(worker, 'exit');
    worker.postMessage('close');
    worker.postMessage('closeAll');
    await within(Promise.all(closed), 10000, 'clients closed');
    const [code] = await within(exit, 10000, 'worker exit');
    expect(code).toBe(0);
    expect(messages).toContainEqual({ closed: true });
    await mainStillServes();
  });
});
