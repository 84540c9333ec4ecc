// The entry of one thread of a threaded server (lib/threads.ts): opens the shared context, loads the
// handler module, and serves the port with SO_REUSEPORT until told to close.
import { parentPort, workerData } from 'node:worker_threads';

import { SecureContext } from './context';
import { COUNTERS, ConnectionListener, Server } from './server';
import type { SessionTier } from './store';
import type { LookupAnswer, ThreadData, ThreadMessage } from './threads';

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

async function main(): Promise<void> {
  const context = SecureContext.fromShared(data.context);
  const tier = data.store ? new ThreadTier() : null;
  context.tier = tier;
  const listener = listenerOf((await importModule(data.handler)) as Record<string, unknown>);
  const server = new Server({ ...data.server, context, [COUNTERS]: data.counters } as never, listener);
  server.on('tlsClientError', (err, client) =>
    send({ type: 'tlsClientError', code: err.code, reason: err.reason, message: err.message, ...client }),
  );
  server.on('error', (error) => send({ type: 'error', error }));
  server.listen(data.listen, () => send({ type: 'listening', address: server.address()! }));
  port.on('message', (m: 'close' | LookupAnswer) => {
    // Drained: end the thread even if the handler module keeps handles of its own open.
    if (m === 'close') server.close(() => process.exit(0));
    else if (m.type === 'lookupResult') tier?.answer(m);
  });
}

main().catch((error: Error) => {
  send({ type: 'error', error });
  process.exit(1);
});
