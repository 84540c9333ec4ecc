// One port, N worker threads, one session cache: createServer({ threads, handler }). Each thread runs a
// native server on the port with SO_REUSEPORT over the same SSL_CTX (SecureContext.share()); the kernel
// spreads the connections, and no thread hands sockets to another.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

import { SecureContext, SharedContextHandle, contextFrom } from './context';
import { Ask } from './binding';
import { TLSError, TLSErrorCode } from './errors';
import { EmitterEvents, TypedEventEmitter } from './events';
import { integerOption } from './options';
import {
  AddressInfo,
  COUNTER_NAMES,
  ClientInfo,
  ListenOptions,
  OCSPRequestListener,
  SERVER_ONLY_OPTIONS,
  SNICallback,
  ServerOptions,
  askOCSP,
  askSNI,
  ServerStats,
  listenOptions,
  serverLimits,
  statsOf,
} from './server';

/** Options of a threaded {@link createServer}: those of a server, plus the threads and their handler. */
export interface ThreadedServerOptions extends ServerOptions {
  /** Worker threads serving the port, 1 to 256 (e.g. `os.availableParallelism()`). */
  threads: number;
  /**
   * The module each thread loads (a `file:` URL, or an absolute path): its default export (or
   * `onConnection`) is the connection listener, a {@link ConnectionListener}. It runs in each
   * thread, so it can build an `http.Server` of its own and `emit('connection', conn)` into it.
   */
  handler: string | URL;
}

/** Events of {@link ThreadedServer}; every EventEmitter method of the class reads this map. */
export interface ThreadedServerEvents extends EmitterEvents {
  /** Every thread listens. */
  listening: [];
  /** A handshake failed in some thread (as `Server`'s event, with the thread's index). */
  tlsClientError: [error: TLSError, client: ClientInfo & { thread: number }];
  /** A thread threw or exited by itself; it is replaced while the server listens. */
  threadError: [error: Error, thread: number];
  /** As `Server`'s: asked in this (the main) thread for the handshakes of every thread. */
  OCSPRequest: Parameters<OCSPRequestListener>;
  close: [];
  error: [error: Error];
}

/** @internal What a thread gets (lib/thread-worker.ts). */
export interface ThreadData {
  context: ReturnType<SecureContext['share']>;
  handler: string;
  server: Record<string, unknown>;
  listen: ListenOptions;
  counters: Float64Array;
  thread: number;
  /** The context has a store: the thread asks it through the main thread. */
  store: boolean;
  /** What the thread asks the main thread during handshakes ({@link Ask} bits: SNICallback, OCSPRequest). */
  ask: number;
}

/** @internal What a thread says. */
export type ThreadMessage =
  | { type: 'listening'; address: AddressInfo }
  | { type: 'tlsClientError'; code: string; reason: string; message: string; remoteAddress: string; remotePort: number }
  | { type: 'error'; error: Error }
  | { type: 'lookup'; n: number; id: Uint8Array }
  | { type: 'taken'; accepted: boolean }
  | { type: 'write'; id: Uint8Array; der: Uint8Array; ttl: number }
  | { type: 'delete'; id: Uint8Array }
  | { type: 'servername'; n: number; servername: string }
  | { type: 'ocsp'; n: number; certificate: Uint8Array; issuer: Uint8Array | null };

/** @internal The main thread's answers to a thread's SNICallback and OCSPRequest questions, and changes of what to ask. */
export type AskAnswer =
  | { type: 'servernameResult'; n: number; context: SharedContextHandle | null; error?: string }
  | { type: 'ocspResult'; n: number; response: Uint8Array | null; error?: string }
  | { type: 'ask'; ask: number };

/** @internal What the main thread answers a thread's lookup with. */
export interface LookupAnswer {
  type: 'lookupResult';
  n: number;
  der: Uint8Array | null;
}

// The thread's entry: compiled JS next to this file in dist/ (from lib/ under ts-jest, the built one).
function workerEntry(): string {
  const here = path.join(__dirname, 'thread-worker.js');
  return existsSync(here) ? here : path.join(__dirname, '..', 'dist', 'thread-worker.js');
}

function handlerUrl(handler: unknown): string {
  if (handler instanceof URL) return handler.href;
  if (typeof handler === 'string' && handler.startsWith('file:')) return handler;
  if (typeof handler === 'string' && path.isAbsolute(handler)) return pathToFileURL(handler).href;
  throw new TypeError(
    'handler must be a file: URL or an absolute path of the module that exports the connection listener',
  );
}

interface Thread {
  worker: Worker;
  listening: boolean;
  /** Its failure was reported already. */
  failed: boolean;
}

/**
 * A TLS server on one port served by N worker threads that share one {@link SecureContext}, and so one
 * session cache: a client resumes whichever thread it reaches. `stats()` sums every thread's counters.
 */
export class ThreadedServer extends TypedEventEmitter<ThreadedServerEvents> {
  /** The context every thread serves with (its cache, stats and events are the threads' too). */
  readonly context: SecureContext;
  private readonly threads: Array<Thread | null>;
  private readonly counters: Float64Array;
  private readonly handler: string;
  private readonly serverOptions: Record<string, unknown>;
  private listenOpts: ListenOptions | null = null;
  private state: 'idle' | 'starting' | 'listening' | 'closing' = 'idle';
  private boundAddress: AddressInfo | null = null;
  private readonly sni: SNICallback | undefined;
  // The contexts an SNICallback answered with, held while the server lives: the threads open them by
  // their shared handle, and the registry of shared contexts holds none.
  private readonly sniContexts = new Set<SecureContext>();

  constructor(options: ThreadedServerOptions) {
    super();
    const { threads, handler, SNICallback: sni, ...rest } = options;
    const n = integerOption(threads, 1, 'threads', 256);
    if (n < 1) throw new RangeError('threads must be an integer from 1 to 256, got 0');
    this.handler = handlerUrl(handler);
    this.context = contextFrom(rest, SERVER_ONLY_OPTIONS, 'createServer');
    serverLimits({ ...rest, SNICallback: sni }); // checked here, so that a bad option throws now rather than in every thread
    this.sni = sni;
    this.on('newListener', (name) => name === 'OCSPRequest' && this.broadcastAsk(true));
    this.on('removeListener', (name) => name === 'OCSPRequest' && this.broadcastAsk());
    this.serverOptions = Object.fromEntries(
      // Plain data only: the SNICallback (a function) stays here and the threads ask it.
      SERVER_ONLY_OPTIONS.filter((k) => k !== 'context' && k !== 'SNICallback')
        .filter((k) => rest[k] !== undefined)
        .map((k) => [k, rest[k]]),
    );
    this.counters = new Float64Array(new SharedArrayBuffer(n * COUNTER_NAMES.length * 8));
    this.threads = new Array<Thread | null>(n).fill(null);
  }

  /** True while every thread accepts connections. */
  get listening(): boolean {
    return this.state === 'listening';
  }

  /** The port and address every thread listens on. */
  address(): AddressInfo | null {
    return this.state === 'listening' ? this.boundAddress : null;
  }

  /** Starts the threads on one port (the first picks it when `port` is 0). */
  listen(port?: number, host?: string, cb?: () => void): this;
  listen(options: ListenOptions, cb?: () => void): this;
  listen(a?: number | ListenOptions, b?: string | (() => void), c?: () => void): this {
    const opts = listenOptions(a, b);
    const cb = typeof b === 'function' ? b : c;
    if (this.state !== 'idle') {
      throw Object.assign(new Error('Listen method has been called more than once without closing.'), {
        code: 'ERR_SERVER_ALREADY_LISTEN',
      });
    }
    if (cb) this.once('listening', cb);
    this.state = 'starting';
    this.listenOpts = { ...opts, reusePort: true };
    this.spawn(0);
    return this;
  }

  /** Stops every thread's listener; `close` fires once every thread has drained its connections and exited. */
  close(cb?: (err?: Error) => void): this {
    if (this.state !== 'listening' && this.state !== 'starting') {
      if (cb) {
        const err = Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' });
        this.once('close', () => cb(err));
      }
      if (this.state !== 'closing') process.nextTick(() => this.emit('close'));
      return this;
    }
    if (cb) this.once('close', cb);
    this.state = 'closing';
    for (const t of this.threads) t?.worker.postMessage('close');
    this.maybeClosed();
    return this;
  }

  /** Every thread's counters summed (as `Server.stats()`), read from shared memory without a call. */
  stats(): ServerStats {
    const total = statsOf(new Float64Array(COUNTER_NAMES.length));
    for (const s of this.threadStats()) for (const k of COUNTER_NAMES) total[k] += s[k];
    return total;
  }

  /** Each thread's counters (a replaced thread's slot carries on counting). */
  threadStats(): ServerStats[] {
    const n = COUNTER_NAMES.length;
    return this.threads.map((_, i) => statsOf(this.counters.subarray(i * n, (i + 1) * n)));
  }

  private ask(adding = false): number {
    return (this.sni ? Ask.Servername : 0) | (adding || this.listenerCount('OCSPRequest') > 0 ? Ask.Ocsp : 0);
  }

  private broadcastAsk(adding = false): void {
    const m: AskAnswer = { type: 'ask', ask: this.ask(adding) };
    for (const t of this.threads) t?.worker.postMessage(m);
  }

  // A thread's handshake waits for the SNICallback or the OCSPRequest listeners, which live here.
  private serveAsk(thread: Thread, m: Extract<ThreadMessage, { type: 'servername' | 'ocsp' }>): void {
    const reply = (a: AskAnswer) => thread.worker.postMessage(a);
    if (m.type === 'servername') {
      if (!this.sni) return reply({ type: 'servernameResult', n: m.n, context: null });
      askSNI(this.sni, this, m.servername, (context, error) => {
        if (context) this.sniContexts.add(context);
        reply({ type: 'servernameResult', n: m.n, context: context ? context.share() : null, error });
      });
    } else {
      const issuer = m.issuer ? Buffer.from(m.issuer) : null;
      askOCSP(this, Buffer.from(m.certificate), issuer, (response, error) =>
        reply({ type: 'ocspResult', n: m.n, response, error }),
      );
    }
  }

  private spawn(i: number): void {
    const n = COUNTER_NAMES.length;
    const data: ThreadData = {
      context: this.context.share(),
      handler: this.handler,
      server: this.serverOptions,
      listen: this.listenOpts!,
      counters: this.counters.subarray(i * n, (i + 1) * n),
      thread: i,
      store: this.context.tier !== null,
      ask: this.ask(),
    };
    const worker = new Worker(workerEntry(), { workerData: data });
    const thread: Thread = { worker, listening: false, failed: false };
    this.threads[i] = thread;
    worker.on('message', (m: ThreadMessage) => this.onMessage(i, thread, m));
    worker.on('error', (err) => {
      thread.failed = true;
      this.emit('threadError', err, i);
    });
    worker.on('exit', () => this.onExit(i, thread));
  }

  private onMessage(i: number, thread: Thread, m: ThreadMessage): void {
    if (m.type === 'listening') {
      thread.listening = true;
      if (this.state !== 'starting') return;
      if (i === 0) {
        // The first thread picked the port; the others join it.
        this.boundAddress = m.address;
        this.listenOpts = { ...this.listenOpts, port: m.address.port, host: m.address.address };
        for (let k = 1; k < this.threads.length; k++) this.spawn(k);
      }
      if (this.threads.every((t) => t?.listening)) {
        this.state = 'listening';
        this.emit('listening');
      }
    } else if (m.type === 'servername' || m.type === 'ocsp') {
      this.serveAsk(thread, m);
    } else if (m.type === 'lookup' || m.type === 'taken' || m.type === 'write' || m.type === 'delete') {
      this.serveStore(thread, m);
    } else if (m.type === 'tlsClientError') {
      const err = new TLSError(m.code as TLSErrorCode, m.reason, m.message);
      this.emit('tlsClientError', err, { remoteAddress: m.remoteAddress, remotePort: m.remotePort, thread: i });
    } else if (m.type === 'error') {
      if (this.state === 'starting') {
        // A thread could not listen (EADDRINUSE, ...): nothing serves; stop the others.
        this.state = 'closing';
        for (const t of this.threads) t?.worker.postMessage('close');
        this.emit('error', m.error);
        this.maybeClosed();
      } else {
        this.emit('threadError', m.error, i);
      }
    }
  }

  // The threads' store calls, made here against the one tier of the context (its store client lives in
  // this thread).
  private serveStore(
    thread: Thread,
    m: Extract<ThreadMessage, { type: 'lookup' | 'taken' | 'write' | 'delete' }>,
  ): void {
    const tier = this.context.tier;
    if (!tier) return;
    if (m.type === 'lookup') {
      void tier.lookup(Buffer.from(m.id)).then((der) => {
        const answer: LookupAnswer = { type: 'lookupResult', n: m.n, der };
        thread.worker.postMessage(answer);
      });
    } else if (m.type === 'taken') {
      tier.taken(m.accepted);
    } else if (m.type === 'write') {
      tier.write(Buffer.from(m.id), Buffer.from(m.der), m.ttl);
    } else {
      tier.delete(Buffer.from(m.id));
    }
  }

  private onExit(i: number, thread: Thread): void {
    if (this.threads[i] !== thread) return;
    this.threads[i] = null;
    if (this.state === 'listening') {
      // Died by itself: report it and put a new thread on the port (its counters slot carries on).
      if (!thread.failed) this.emit('threadError', new Error(`thread ${i} exited by itself; replaced`), i);
      this.spawn(i);
      return;
    }
    this.maybeClosed();
  }

  private maybeClosed(): void {
    if (this.state !== 'closing' || this.threads.some((t) => t !== null)) return;
    this.state = 'idle';
    this.boundAddress = null;
    this.emit('close');
  }
}
