// The entry of one thread of a threaded server (lib/threads.ts): opens the shared context, loads the
// handler module, and serves the port with SO_REUSEPORT until told to close.
import { parentPort, workerData } from 'node:worker_threads';

import { SecureContext } from './context';
import { Ask } from './binding';
import { COUNTERS, ConnectionListener, OCSPRequestListener, SNICallback, Server } from './server';
import type { SessionTier } from './store';
import type { AskAnswer, LookupAnswer, ThreadData, ThreadMessage } from './threads';

const data = workerData as ThreadData;
const port = parentPort!;
const send = (m: ThreadMessage): void => port.postMessage(m);

type Listener = ConnectionListener;

// A real import(), which loads ES modules and CommonJS alike: TypeScript's CommonJS output would turn
// `import()` into require(), which takes no file: URL and no ES module.
const importModule = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<unknown>;

function listenerOf(mod: Record<string, unknown>): Listener {
  // A CommonJS module's exports arrive as `default`; an ES module's default export too.
  const d = mod.default as Record<string, unknown> | Listener | undefined;
  const candidates = [
    d,
    (d as Record<string, unknown> | undefined)?.default,
    mod.onConnection,
    (d as Record<string, unknown> | undefined)?.onConnection,
  ];
  const fn = candidates.find((c) => typeof c === 'function');
  if (!fn) throw new TypeError(`${data.handler} exports no connection listener (a default export or onConnection)`);
  return fn as Listener;
}

// The store of a threaded server lives in the main thread (with its client): this thread asks there.
class ThreadTier implements SessionTier {
  private next = 1;
  private readonly waiting = new Map<number, (der: Buffer | null) => void>();

  answer(m: LookupAnswer): void {
    const resolve = this.waiting.get(m.n);
    this.waiting.delete(m.n);
    resolve?.(m.der ? Buffer.from(m.der) : null);
  }

  lookup(id: Buffer): Promise<Buffer | null> {
    const n = this.next++;
    send({ type: 'lookup', n, id });
    return new Promise((resolve) => this.waiting.set(n, resolve));
  }

  taken(accepted: boolean): void {
    send({ type: 'taken', accepted });
  }

  write(id: Buffer, der: Buffer, ttl: number): void {
    send({ type: 'write', id, der, ttl });
  }

  delete(id: Buffer): void {
    send({ type: 'delete', id });
  }
}

// The SNICallback and OCSPRequest listeners of a threaded server live in the main thread: asked there.
const asking = new Map<number, (a: AskAnswer) => void>();
let nextAsk = 1;
const sniContexts = new Map<string, SecureContext>(); // by shared id: opened once per thread

function askMain(m: ThreadMessage, n: number): Promise<AskAnswer> {
  return new Promise((resolve) => {
    asking.set(n, resolve);
    send(m);
  });
}

const sniProxy: SNICallback = (servername, cb) => {
  const n = nextAsk++;
  void askMain({ type: 'servername', n, servername }, n).then((a) => {
    if (a.type !== 'servernameResult') return;
    if (a.error !== undefined) return cb(new Error(a.error));
    if (!a.context) return cb(null, null);
    let ctx = sniContexts.get(a.context.id);
    try {
      ctx ??= SecureContext.fromShared(a.context);
    } catch (err) {
      return cb(err as Error);
    }
    sniContexts.set(a.context.id, ctx);
    cb(null, ctx);
  });
};

const ocspProxy: OCSPRequestListener = (certificate, issuer, cb) => {
  const n = nextAsk++;
  void askMain({ type: 'ocsp', n, certificate, issuer }, n).then((a) => {
    if (a.type !== 'ocspResult') return;
    if (a.error !== undefined) return cb(new Error(a.error));
    cb(null, a.response ? Buffer.from(a.response) : null);
  });
};

async function main(): Promise<void> {
  const context = SecureContext.fromShared(data.context);
  const tier = data.store ? new ThreadTier() : null;
  context.tier = tier;
  const listener = listenerOf((await importModule(data.handler)) as Record<string, unknown>);
  const sni = data.ask & Ask.Servername ? sniProxy : undefined;
  const server = new Server(
    { ...data.server, context, SNICallback: sni, [COUNTERS]: data.counters } as never,
    listener,
  );
  const askOcsp = (on: boolean) => {
    server.off('OCSPRequest', ocspProxy);
    if (on) server.on('OCSPRequest', ocspProxy);
  };
  askOcsp((data.ask & Ask.Ocsp) !== 0);
  server.on('tlsClientError', (err, client) =>
    send({ type: 'tlsClientError', code: err.code, reason: err.reason, message: err.message, ...client }),
  );
  server.on('error', (error) => send({ type: 'error', error }));
  server.listen(data.listen, () => send({ type: 'listening', address: server.address()! }));
  port.on('message', (m: 'close' | LookupAnswer | AskAnswer) => {
    // Drained: end the thread even if the handler module keeps handles of its own open.
    if (m === 'close') server.close(() => process.exit(0));
    else if (m.type === 'lookupResult') tier?.answer(m);
    else if (m.type === 'ask') askOcsp((m.ask & Ask.Ocsp) !== 0);
    else {
      const resolve = asking.get(m.n);
      asking.delete(m.n);
      resolve?.(m);
    }
  });
}

main().catch((error: Error) => {
  send({ type: 'error', error });
  process.exit(1);
});
