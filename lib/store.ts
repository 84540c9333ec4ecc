// The second tier behind OpenSSL's internal cache: a shared store (Redis, Valkey, anything with get/set/
// delete) that several processes and machines resume each other's sessions from. What goes there is
// encrypted and authenticated; the handshake never waits for it longer than `storeTimeout`.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** A key-value store of session blobs with expiry. Any backend can implement it. */
export interface SessionStore {
  /** The value under `key`, or undefined. */
  get(key: string): Promise<Buffer | undefined>;
  /** Stores `value` under `key` for `ttlSeconds`. */
  set(key: string, value: Buffer, ttlSeconds: number): Promise<void>;
  delete(key: string): Promise<void>;
}

/** Counters of the store tier, in `SecureContext.stats().store`. */
export interface StoreStats {
  /** Lookups answered with a session that was resumed from. */
  hits: number;
  /** Lookups the store had nothing for. */
  misses: number;
  /** Lookups that failed (the store threw or rejected). */
  errors: number;
  /** Lookups not answered within `storeTimeout` (the handshake went on without). */
  timeouts: number;
  /** Blobs that did not decrypt or did not fit the offered session: never resumed. */
  rejected: number;
  /** Lookups skipped while the breaker was open. */
  skipped: number;
  writes: number;
  writeErrors: number;
  /** Writes and deletes sent and not yet answered by the store. */
  pendingWrites: number;
  deletes: number;
  /** `'closed'` (asking), `'open'` (not asking after repeated failures), `'half-open'` (one probe out). */
  breaker: 'closed' | 'open' | 'half-open';
}

/** Options of the store tier (on SecureContext). */
export interface StoreOptions {
  store: SessionStore;
  /** 32-byte key, or a list for rotation: the first encrypts, every one decrypts. */
  storeKey: Buffer | Buffer[];
  /** Milliseconds a handshake waits for the store before going on with a full handshake. Default 50. */
  storeTimeout?: number;
  /** Consecutive failures (errors or timeouts) that open the breaker. Default 5. */
  storeFailures?: number;
  /** Milliseconds the breaker stays open before one probe. Default 5000. */
  storeRetryAfter?: number;
}

const VERSION = 1;
const AAD_LABEL = Buffer.from('openssl-session-cache/session/1');

function keyId(key: Buffer): Buffer {
  return createHash('sha256').update('openssl-session-cache/key-id').update(key).digest().subarray(0, 4);
}

/**
 * @internal Seals session DER for storage: version, key id, nonce, AES-256-GCM ciphertext, tag; the
 * session id and the session id context are the associated data, so a blob moved to another id or
 * service fails to open. The first key seals; every key opens.
 */
export class SessionSealer {
  private readonly keys: Array<{ id: Buffer; key: Buffer }>;

  constructor(
    keys: Buffer[],
    private readonly sidContext: Buffer,
  ) {
    this.keys = keys.map((key) => ({ id: keyId(key), key }));
  }

  seal(der: Buffer, id: Buffer): Buffer {
    const { id: kid, key } = this.keys[0];
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(this.aad(id));
    const body = Buffer.concat([cipher.update(der), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), kid, nonce, body, cipher.getAuthTag()]);
  }

  /** The DER in a blob, or null when no key of ours sealed it for this id and context. */
  open(blob: Buffer, id: Buffer): Buffer | null {
    if (blob.length < 1 + 4 + 12 + 16 + 1 || blob[0] !== VERSION) return null;
    const kid = blob.subarray(1, 5);
    const entry = this.keys.find((k) => k.id.equals(kid));
    if (!entry) return null;
    try {
      const decipher = createDecipheriv('aes-256-gcm', entry.key, blob.subarray(5, 17));
      decipher.setAAD(this.aad(id));
      decipher.setAuthTag(blob.subarray(blob.length - 16));
      return Buffer.concat([decipher.update(blob.subarray(17, blob.length - 16)), decipher.final()]);
    } catch {
      return null;
    }
  }

  private aad(id: Buffer): Buffer {
    const c = this.sidContext;
    return Buffer.concat([AAD_LABEL, Buffer.from([c.length]), c, Buffer.from([id.length]), id]);
  }
}

/** @internal What the transports ask of the second tier (a StoreTier, or a thread's proxy to one). */
export interface SessionTier {
  lookup(id: Buffer): Promise<Buffer | null>;
  taken(accepted: boolean): void;
  write(id: Buffer, der: Buffer, ttlSeconds: number): void;
  delete(id: Buffer): void;
}

/** @internal The tier's logic: keys, crypto, timeout, breaker, counters. Used by the transports. */
export class StoreTier implements SessionTier {
  readonly counters: StoreStats = {
    hits: 0,
    misses: 0,
    errors: 0,
    timeouts: 0,
    rejected: 0,
    skipped: 0,
    writes: 0,
    writeErrors: 0,
    pendingWrites: 0,
    deletes: 0,
    breaker: 'closed',
  };
  private readonly sealer: SessionSealer;
  private readonly prefix: string;
  private failures = 0;
  private openUntil = 0;
  private lastReport = 0;

  constructor(
    private readonly store: SessionStore,
    keys: Buffer[],
    sidContext: Buffer,
    private readonly timeoutMs: number,
    private readonly maxFailures: number,
    private readonly retryAfterMs: number,
    private readonly onError: (err: Error) => void,
  ) {
    this.sealer = new SessionSealer(keys, sidContext);
    // The key names the service: sessions of another session id context are never even looked at.
    this.prefix = `${createHash('sha256').update(sidContext).digest('hex').slice(0, 16)}:`;
  }

  keyOf(id: Buffer): string {
    return this.prefix + id.toString('hex');
  }

  /** The session's DER for `id`, or null: a miss, an error, a timeout, an open breaker, a bad blob. */
  async lookup(id: Buffer): Promise<Buffer | null> {
    if (!this.mayAsk()) {
      this.counters.skipped++;
      return null;
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.timeoutMs);
    });
    let blob: Buffer | undefined | 'timeout';
    try {
      blob = await Promise.race([this.store.get(this.keyOf(id)), timeout]);
    } catch (err) {
      this.counters.errors++;
      this.failed(err as Error);
      return null;
    } finally {
      clearTimeout(timer);
    }
    if (blob === 'timeout') {
      this.counters.timeouts++;
      this.failed(new Error(`the session store did not answer within ${this.timeoutMs} ms`));
      return null;
    }
    this.succeeded();
    if (blob === undefined || blob === null) {
      this.counters.misses++;
      return null;
    }
    const der = Buffer.isBuffer(blob) ? this.open(blob, id) : null;
    if (der === null) this.counters.rejected++;
    return der;
  }

  /** The native side's verdict on a session the store gave: resumed from, or not for this context. */
  taken(accepted: boolean): void {
    if (accepted) this.counters.hits++;
    else this.counters.rejected++;
  }

  /** Writes behind: never awaited by a handshake. */
  write(id: Buffer, der: Buffer, ttlSeconds: number): void {
    this.counters.writes++;
    this.track(this.store.set(this.keyOf(id), this.seal(der, id), Math.max(1, Math.ceil(ttlSeconds))));
  }

  delete(id: Buffer): void {
    this.counters.deletes++;
    this.track(this.store.delete(this.keyOf(id)));
  }

  private track(op: Promise<void>): void {
    this.counters.pendingWrites++;
    op.catch((err: Error) => {
      this.counters.writeErrors++;
      this.report(err);
    }).finally(() => this.counters.pendingWrites--);
  }

  seal(der: Buffer, id: Buffer): Buffer {
    return this.sealer.seal(der, id);
  }

  open(blob: Buffer, id: Buffer): Buffer | null {
    return this.sealer.open(blob, id);
  }

  private mayAsk(): boolean {
    if (this.counters.breaker === 'closed') return true;
    if (this.counters.breaker === 'open' && Date.now() >= this.openUntil) {
      this.counters.breaker = 'half-open'; // one probe
      return true;
    }
    return false;
  }

  private failed(err: Error): void {
    this.failures++;
    if (this.counters.breaker === 'half-open' || this.failures >= this.maxFailures) {
      this.counters.breaker = 'open';
      this.openUntil = Date.now() + this.retryAfterMs;
    }
    this.report(err);
  }

  private succeeded(): void {
    this.failures = 0;
    this.counters.breaker = 'closed';
  }

  // At most one report a second: a store that is down must not flood the process with events.
  private report(err: Error): void {
    const now = Date.now();
    if (now - this.lastReport < 1000) return;
    this.lastReport = now;
    this.onError(err);
  }
}

/** The clients RedisStore takes: ioredis / iovalkey, or node-redis (`redis` v4, v5). */
export type RedisLikeClient =
  | {
      get(key: string): Promise<string | null>;
      set(key: string, value: string, mode: 'EX', seconds: number): Promise<unknown>;
      del(key: string): Promise<number>;
      getBuffer?: unknown;
    }
  | {
      get(key: string): Promise<string | null>;
      set(key: string, value: string, options: { EX: number }): Promise<unknown>;
      del(key: string | string[]): Promise<number>;
    };

/**
 * A {@link SessionStore} on Redis or Valkey, over a client you already have and configure (TLS, auth,
 * sentinel, cluster): ioredis or iovalkey, or node-redis (`redis` v4/v5). Values are stored as base64
 * text, which both clients read and write the same way; keys are `prefix` + the tier's own key.
 */
export class RedisStore implements SessionStore {
  private readonly ioredis: boolean;

  constructor(
    private readonly client: RedisLikeClient,
    private readonly options: { prefix?: string } = {},
  ) {
    if (
      typeof client !== 'object' ||
      client === null ||
      typeof client.get !== 'function' ||
      typeof client.set !== 'function'
    ) {
      throw new TypeError('RedisStore needs an ioredis/iovalkey or node-redis client');
    }
    // ioredis and iovalkey have getBuffer(); node-redis takes SET options as an object.
    this.ioredis = typeof (client as { getBuffer?: unknown }).getBuffer === 'function';
  }

  private key(key: string): string {
    return (this.options.prefix ?? 'osc:') + key;
  }

  async get(key: string): Promise<Buffer | undefined> {
    const v = await this.client.get(this.key(key));
    return v === null || v === undefined ? undefined : Buffer.from(v, 'base64');
  }

  async set(key: string, value: Buffer, ttlSeconds: number): Promise<void> {
    const v = value.toString('base64');
    if (this.ioredis) {
      await (this.client as { set(k: string, v: string, m: 'EX', s: number): Promise<unknown> }).set(
        this.key(key),
        v,
        'EX',
        ttlSeconds,
      );
    } else {
      await (this.client as { set(k: string, v: string, o: { EX: number }): Promise<unknown> }).set(this.key(key), v, {
        EX: ttlSeconds,
      });
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.del(this.key(key));
  }
}
