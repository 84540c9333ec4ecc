// The 'keylog' event: NSS key log lines as node:tls emits them, compared with what node's own client
// logs for the same connection.
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { spawn } from 'node:child_process';

import { TLSConnection, generateCertificate, wrap } from '../lib';
import { CERT, HOST, delay, echo, sClient, until, useServerFixture, within } from './server-helpers';

const fx = useServerFixture();

/** Connects with node's client, echoes once (TLS 1.3 tickets), closes; returns its key log lines. */
async function clientLines(
  port: number,
  opts: tls.ConnectionOptions,
): Promise<{ lines: string[]; session?: Buffer; reused: boolean }> {
  const c = tls.connect({ host: HOST, port, rejectUnauthorized: false, ...opts });
  fx.sockets.push(c);
  const lines: string[] = [];
  let session: Buffer | undefined;
  c.on('keylog', (line: Buffer) => lines.push(line.toString('latin1')));
  c.on('session', (s: Buffer) => (session = s));
  await within(once(c, 'secureConnect'), 5000, 'secureConnect');
  const reused = c.isSessionReused();
  c.write('x');
  await within(once(c, 'data'), 5000, 'echo');
  c.end();
  await within(once(c, 'close'), 5000, 'close');
  return { lines, session: session ?? c.getSession(), reused };
}

const sorted = (lines: string[]) => [...lines].sort();

describe('keylog', () => {
  test.each(['TLSv1.2', 'TLSv1.3'] as const)("%s: the native server emits the lines node's client logs", async (v) => {
    const got: Array<{ line: string; conn: TLSConnection }> = [];
    const { server, port, connections } = await fx.start({}, echo);
    server.on('keylog', (line, conn) => got.push({ line: line.toString('latin1'), conn }));
    const full = await clientLines(port, { minVersion: v, maxVersion: v });
    expect(full.lines.length).toBeGreaterThan(0);
    expect(full.lines.every((l) => l.endsWith('\n'))).toBe(true);
    expect(sorted(got.map((g) => g.line))).toEqual(sorted(full.lines));
    expect(got.every((g) => g.conn === connections[0])).toBe(true);
    // A resumed connection too.
    got.length = 0;
    const again = await clientLines(port, { minVersion: v, maxVersion: v, session: full.session });
    expect(again.reused).toBe(true);
    expect(sorted(got.map((g) => g.line))).toEqual(sorted(again.lines));
    expect(got.every((g) => g.conn === connections[1])).toBe(true);
  });

  test.each(['TLSv1.2', 'TLSv1.3'] as const)(
    '%s: a connection switched to a host name context (SNI) logs too',
    async (v) => {
      const named = generateCertificate({ commonName: 'named.test', altNames: ['named.test'] });
      const got: string[] = [];
      const { server, port } = await fx.start({ contexts: { 'named.test': named } }, echo);
      server.on('keylog', (line) => got.push(line.toString('latin1')));
      const c = await clientLines(port, { minVersion: v, maxVersion: v, servername: 'named.test' });
      expect(c.lines.length).toBeGreaterThan(0);
      expect(sorted(got)).toEqual(sorted(c.lines));
    },
  );

  test('lines come before secureConnection, with the connection it then hands out', async () => {
    const order: string[] = [];
    const { server, port } = await fx.start({}, (conn) => {
      order.push('secureConnection');
      echo(conn);
    });
    server.on('keylog', () => order.push('keylog'));
    await clientLines(port, { maxVersion: 'TLSv1.3' });
    expect(order[order.length - 1]).toBe('secureConnection');
    expect(order.filter((o) => o === 'keylog')).toHaveLength(5); // TLS 1.3: 5 secrets
  });

  test('nothing is collected once the last listener is gone', async () => {
    const { server, port } = await fx.start({}, echo);
    const got: Buffer[] = [];
    const listener = (line: Buffer) => got.push(line);
    server.on('keylog', listener);
    await clientLines(port, {});
    expect(got.length).toBeGreaterThan(0);
    server.off('keylog', listener);
    got.length = 0;
    const seen: Buffer[] = [];
    server.emit = new Proxy(server.emit, {
      apply: (fn, self, args: unknown[]) => {
        if (args[0] === 'keylog') seen.push(args[1] as Buffer);
        return Reflect.apply(fn, self, args);
      },
    });
    await clientLines(port, {});
    expect(seen).toEqual([]);
  });

  test.each(['TLSv1.2', 'TLSv1.3'] as const)('%s: wrap() emits the lines on the connection', async (v) => {
    const got: string[] = [];
    const server = net.createServer((socket) => {
      const conn = wrap(socket, { cert: CERT.cert, key: CERT.key });
      conn.on('keylog', (line: Buffer) => got.push(line.toString('latin1')));
      conn.on('error', () => undefined);
      echo(conn);
    });
    server.listen(0, HOST);
    await once(server, 'listening');
    try {
      const port = (server.address() as net.AddressInfo).port;
      const { lines } = await clientLines(port, { minVersion: v, maxVersion: v });
      await until(() => got.length >= lines.length, 2000, 'server lines');
      expect(lines.length).toBeGreaterThan(0);
      expect(sorted(got)).toEqual(sorted(lines));
    } finally {
      server.close();
    }
  });

  test('openssl s_client -keylogfile writes the same lines', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'osc-keylog-'));
    try {
      const got: string[] = [];
      const { server, port } = await fx.start({}, echo);
      server.on('keylog', (line) => got.push(line.toString('latin1')));
      const file = path.join(dir, 'keys.log');
      await sClient(port, ['-keylogfile', file], { input: 'hi\n', inputDelayMs: 300 });
      const logged = readFileSync(file, 'latin1')
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith('#'))
        .map((l) => `${l}\n`);
      expect(logged.length).toBeGreaterThan(0);
      expect(sorted(got)).toEqual(sorted(logged));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('examples/keylog.js writes SSLKEYLOGFILE', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'osc-keylog-'));
    const file = path.join(dir, 'sslkeys.log');
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'keylog.js')], {
      env: { ...process.env, SSLKEYLOGFILE: file, PORT: '0' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const [first] = (await within(once(child.stdout, 'data'), 10000, 'the example to listen')) as [Buffer];
      const port = Number(/:(\d+)/.exec(first.toString())![1]);
      const { lines } = await clientLines(port, {});
      await delay(50);
      await until(
        () => {
          try {
            return readFileSync(file, 'latin1').length > 0;
          } catch {
            return false;
          }
        },
        3000,
        'the key log file',
      );
      await until(() => readFileSync(file, 'latin1').split('\n').length > lines.length, 3000, 'every line');
      expect(sorted(readFileSync(file, 'latin1').split(/(?<=\n)/))).toEqual(sorted(lines));
    } finally {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
