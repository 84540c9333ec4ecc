// Replays the fuzzer's recorded client flights (fuzz/corpus/, framing described in
// fuzz/engine_fuzzer.cc) through wrap() over an in-memory Duplex, on every `npm test`: each recording
// must end in a secure connection or a close with a reason, never an exception or a hang, and the
// server must still serve real clients afterwards.
import fs from 'node:fs';
import path from 'node:path';
import { Duplex } from 'node:stream';

import { CloseInfo, SecureContext, SecureContextOptions, TLSError, wrap } from '../lib';
import { TestServer, connectClient, within } from './helpers';

const FUZZ = path.join(__dirname, '..', 'fuzz');
const pem = (name: string) => fs.readFileSync(path.join(FUZZ, 'certs', name), 'utf8');
const CA = pem('ca.pem');

// Byte 0 of a corpus file: the server context. Byte 1: how the harness runs it.
const SRV = { DROP: 0x40, ECHO: 0x80 };
const RUN_LIVE = 0x04;
// Frame ops whose data the harness (without its live client) hands to Receive().
const RECEIVE_OPS = new Set([0, 1, 4, 5, 7]);

interface Recording {
  name: string;
  server: number;
  run: number;
  /** What the client sent, one chunk per frame. */
  chunks: Buffer[];
}

function decode(name: string, bytes: Buffer): Recording {
  const chunks: Buffer[] = [];
  let p = 2;
  while (p < bytes.length) {
    const op = bytes[p];
    const len = p + 3 <= bytes.length ? bytes.readUInt16BE(p + 1) : 0;
    const start = Math.min(p + 3, bytes.length);
    const data = bytes.subarray(start, Math.min(start + len, bytes.length));
    p = start + data.length;
    if (RECEIVE_OPS.has(op % 8) && data.length > 0) chunks.push(data);
  }
  return { name, server: bytes[0], run: bytes[1], chunks };
}

// The SecureContext the harness builds for byte 0: the recorder's own function, so both stay in step.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { contextOptions } = require('../fuzz/record.js') as { contextOptions(server: number): SecureContextOptions };

/** A socket stand-in: the test pushes what the client sent; what the server writes is collected. */
class CaptureDuplex extends Duplex {
  readonly written: Buffer[] = [];
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.written.push(chunk);
    cb();
  }
}

interface Outcome {
  secure: boolean;
  info: CloseInfo;
  errors: Error[];
  /** Everything the server wrote. */
  wire: Buffer;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

async function replay(rec: Recording, context: SecureContext): Promise<Outcome> {
  const socket = new CaptureDuplex();
  const conn = wrap(socket, { context, uncleanClose: rec.server & SRV.DROP ? 'drop' : 'keep' });
  const errors: Error[] = [];
  let secure = false;
  conn.on('error', (err) => errors.push(err));
  conn.on('secure', () => (secure = true));
  const closed = new Promise<CloseInfo>((resolve) => conn.once('close', resolve));
  if (rec.server & SRV.ECHO) conn.pipe(conn);
  else conn.resume();
  // One flight per chunk, each handled before the next arrives.
  for (const chunk of rec.chunks) {
    if (conn.closeInfo) break;
    socket.push(chunk);
    await tick();
  }
  // The client leaves: FIN, then the socket closes (if the server has not closed it already).
  if (!conn.closeInfo) {
    socket.push(null);
    await tick();
    socket.destroy();
  }
  const info = await within(closed, 2000, `${rec.name}: close`);
  return { secure, info, errors, wire: Buffer.concat(socket.written) };
}

/** TLS record content types in `wire`, in order (stops at a truncated record). */
function recordTypes(wire: Buffer): number[] {
  const types: number[] = [];
  for (let p = 0; p + 5 <= wire.length; p += 5 + wire.readUInt16BE(p + 3)) types.push(wire[p]);
  return types;
}

const recordings = fs
  .readdirSync(path.join(FUZZ, 'corpus'))
  .sort()
  .map((name) => decode(name, fs.readFileSync(path.join(FUZZ, 'corpus', name))))
  .filter((rec) => (rec.run & RUN_LIVE) === 0); // live-client inputs carry no recorded flights

describe('fuzz corpus replay', () => {
  const contexts = new Map<number, SecureContext>();
  const contextFor = (server: number) => {
    if (!contexts.has(server)) contexts.set(server, new SecureContext(contextOptions(server)));
    return contexts.get(server)!;
  };
  const outcomes = new Map<string, Outcome>();

  test('the corpus holds recorded flights', () => {
    expect(recordings.length).toBeGreaterThanOrEqual(10);
    for (const rec of recordings) {
      expect(rec.chunks.length).toBeGreaterThan(0);
      expect(rec.chunks[0][0]).toBe(0x16); // every recording starts with a ClientHello record
    }
  });

  test.each(recordings.map((r) => [r.name, r] as const))('%s: secure, or closed with a reason', async (_name, rec) => {
    const out = await replay(rec, contextFor(rec.server));
    outcomes.set(rec.name, out);
    expect(['error', 'eof', 'local', 'close_notify']).toContain(out.info.ending);
    if (out.info.ending === 'error') {
      expect(out.secure).toBe(false);
      const err = out.errors[0] as TLSError;
      expect(err).toBeInstanceOf(TLSError);
      expect(err.code).toBe('ERR_OSC_HANDSHAKE');
      expect(err.reason.length).toBeGreaterThan(0);
    } else {
      expect(out.errors).toEqual([]);
    }
  });

  test('the server answered recorded ClientHellos', () => {
    const answered = [...outcomes.values()].filter((o) => recordTypes(o.wire)[0] === 0x16);
    expect(answered.length).toBeGreaterThan(0);
  });

  test('the server still serves real clients afterwards', async () => {
    const plain = contextFor(SRV.ECHO);
    const before = plain.stats().acceptGood;
    const srv = await TestServer.start(plain);
    try {
      const r = await connectClient(srv.port, { ca: CA });
      expect(r.protocol).toBe('TLSv1.3');
      expect(plain.stats().acceptGood).toBe(before + 1);
    } finally {
      await srv.close();
    }
    // and one that requires client certificates, with the fuzzer's client certificate
    const strict = contextFor(SRV.ECHO | 0x01);
    const srv2 = await TestServer.start(strict);
    try {
      const r = await connectClient(srv2.port, {
        ca: CA,
        cert: pem('client.pem'),
        key: pem('client.key'),
        maxVersion: 'TLSv1.2',
      });
      expect(r.protocol).toBe('TLSv1.2');
      expect((await srv2.last().secure).authorized).toBe(true);
    } finally {
      await srv2.close();
    }
    for (const ctx of contexts.values()) expect(ctx.stats().acceptGood).toBeLessThanOrEqual(1);
  });
});
