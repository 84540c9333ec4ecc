// Session resumption through the native TCP transport, with real clients: openssl s_client (TLS 1.2
// by session id, TLS 1.3 stateful via -sess_out/-sess_in) and node's tls client (TLS 1.2 and 1.3).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { HOST, Started, echo, sessionOf, sh, startServer, stopServer, until } from './server-helpers';

jest.setTimeout(60000);

let s: Started | undefined;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'osc-resumption-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await stopServer(s?.server);
  s = undefined;
});

function expectStatsAgree(started: Started, resumed: number, handshakes: number): void {
  const st = started.server.stats();
  const cs = started.server.context.stats();
  expect(st.resumed).toBe(resumed);
  expect(cs.hits).toBe(resumed);
  expect(st.handshakes).toBe(handshakes);
  expect(cs.acceptGood).toBe(handshakes);
  expect(st.handshakeFailures).toBe(0);
}

describe('openssl s_client', () => {
  test('TLS 1.2 -reconnect: one session id six times, five of them reused', async () => {
    s = await startServer({}, echo);
    const r = await sh(`openssl s_client -connect ${HOST}:${s.port} -reconnect -tls1_2 -no_ticket`, 30000);
    expect(r.code).toBe(0);
    const out = r.stdout + r.stderr;
    const ids = [...out.matchAll(/Session-ID: ([0-9A-F]+)/g)].map((m) => m[1]);
    expect(ids).toHaveLength(6);
    expect(ids[0]).toMatch(/^[0-9A-F]{64}$/);
    expect(new Set(ids).size).toBe(1);
    expect(out.match(/^New, TLSv1\.2/gm)).toHaveLength(1);
    expect(out.match(/^Reused, TLSv1\.2/gm)).toHaveLength(5);

    // The server saw the same: six connections, the last five resumed the first one's session.
    await until(() => s!.connections.length === 6, 5000, 'six connections');
    const sessions = s.connections.map((c) => c.session!);
    expect(sessions.map((x) => x.reused)).toEqual([false, true, true, true, true, true]);
    expect(new Set(sessions.map((x) => x.id.toUpperCase()))).toEqual(new Set(ids));
    expect(sessions.every((x) => x.protocol === 'TLSv1.2')).toBe(true);
    expectStatsAgree(s, 5, 6);
  });

  test('TLS 1.3 -sess_out then -sess_in: Reused, TLSv1.3', async () => {
    s = await startServer({}, echo);
    const file = path.join(dir, 'tls13.pem');
    const client = (flag: string) =>
      sh(
        `(sleep 0.5; echo hi; sleep 0.5) | openssl s_client -connect ${HOST}:${s!.port} -tls1_3 ${flag} ${file}`,
        20000,
      );

    const first = await client('-sess_out');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^New, TLSv1\.3/m);
    expect(first.stdout).toMatch(/^hi$/m); // the echo came back

    const second = await client('-sess_in');
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/^Reused, TLSv1\.3/m);
    expect(second.stdout).toMatch(/^hi$/m);

    await until(() => s!.connections.length === 2, 5000, 'two connections');
    expect(s.connections.map((c) => c.session!.reused)).toEqual([false, true]);
    expect(s.connections.every((c) => c.session!.protocol === 'TLSv1.3')).toBe(true);
    expectStatsAgree(s, 1, 2);
  });
});

describe('node tls client with `session`', () => {
  test.each([['TLSv1.2' as const], ['TLSv1.3' as const]])('%s resumes', async (version) => {
    s = await startServer({}, echo);
    const opts = { port: s.port, minVersion: version, maxVersion: version };
    const first = await sessionOf(opts);
    expect(first.reused).toBe(false);
    expect(first.protocol).toBe(version);

    const second = await sessionOf({ ...opts, session: first.session });
    expect(second.reused).toBe(true);
    expect(second.protocol).toBe(version);
    const third = await sessionOf({ ...opts, session: second.session });
    expect(third.reused).toBe(true);

    // A session from another server (its own cache) is not resumed: a full handshake instead.
    const other = await startServer({}, echo);
    try {
      const foreign = await sessionOf({ ...opts, port: other.port, session: first.session });
      expect(foreign.reused).toBe(false);
      expect(other.server.stats().resumed).toBe(0);
      expect(other.server.context.stats().hits).toBe(0);
    } finally {
      await stopServer(other.server);
    }

    await until(() => s!.connections.length === 3, 5000, 'three connections');
    expect(s.connections.map((c) => c.session!.reused)).toEqual([false, true, true]);
    expect(s.connections.every((c) => c.session!.protocol === version)).toBe(true);
    expectStatsAgree(s, 2, 3);
  });
});
