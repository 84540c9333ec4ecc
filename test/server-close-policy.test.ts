// uncleanClose policy of the native server: how a connection ends (close_notify, FIN without
// close_notify, RST, or the server ending it itself) decides whether its session can be resumed.
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';

import { CloseInfo, ShutdownFlags, TLSConnection } from '../lib';
import {
  HOST,
  Started,
  connectWithSession,
  echo,
  sClient,
  sessionOf,
  startServer,
  stopServer,
  until,
  within,
} from './server-helpers';

jest.setTimeout(60000);

type Ending = 'close_notify' | 'eof' | 'reset';
type Version = 'TLSv1.2' | 'TLSv1.3';
type Policy = 'keep' | 'drop';

let s: Started | undefined;

afterEach(async () => {
  await stopServer(s?.server);
  s = undefined;
});

/**
 * A TLS client over a raw TCP socket we control; it reads its session (tickets, in TLS 1.3) and then
 * ends the way asked: close_notify (tls end), FIN without close_notify (raw end), or RST.
 */
async function connectAndEnd(port: number, version: Version, ending: Ending): Promise<Buffer> {
  const raw = net.connect({ host: HOST, port });
  raw.on('error', () => undefined);
  await within(once(raw, 'connect'), 5000, 'tcp connect');
  // host: the same as the reconnecting client's. Without it node:tls takes 'localhost', and Node 22+ binds a
  // client session to the host it was made for (getSession() carries it): a session for 'localhost' is not
  // offered to 127.0.0.1.
  const c = tls.connect({
    socket: raw,
    host: HOST,
    rejectUnauthorized: false,
    minVersion: version,
    maxVersion: version,
  });
  c.on('error', () => undefined);
  const sessions: Buffer[] = [];
  c.on('session', (x: Buffer) => sessions.push(x));
  await within(once(c, 'secureConnect'), 10000, 'secureConnect');
  expect(c.isSessionReused()).toBe(false);
  c.write('x');
  await within(once(c, 'data'), 10000, 'echo');
  await until(() => sessions.length > 0, 5000, 'a session');
  const session = sessions[sessions.length - 1];
  switch (ending) {
    case 'close_notify':
      c.end();
      break;
    case 'eof':
      raw.end(); // TCP FIN; the TLS layer never sends close_notify
      break;
    case 'reset':
      raw.resetAndDestroy();
      break;
  }
  return session;
}

const cases: Array<[Version, Policy, Ending, boolean]> = [];
for (const version of ['TLSv1.2', 'TLSv1.3'] as Version[]) {
  for (const ending of ['close_notify', 'eof', 'reset'] as Ending[]) {
    cases.push([version, 'keep', ending, true]);
    cases.push([version, 'drop', ending, ending === 'close_notify']);
  }
}

test.each(cases)(
  '%s uncleanClose=%s, client ends with %s: resumed afterwards = %s',
  async (version, policy, ending, resumable) => {
    const closes: CloseInfo[] = [];
    s = await startServer({ uncleanClose: policy }, (conn: TLSConnection) => {
      conn.on('close', (info) => closes.push(info));
      echo(conn);
    });
    const removed: string[] = [];
    s.server.context.on('sessionRemoved', (id) => removed.push(id));

    const session = await connectAndEnd(s.port, version, ending);
    await until(() => closes.length === 1, 10000, 'the server-side close');
    expect(closes[0].ending).toBe(ending);
    expect(closes[0].clean).toBe(ending === 'close_notify');
    expect(s.connections[0].closeInfo).toEqual(closes[0]);
    await until(() => s!.server.stats().connections === 0, 5000, 'no open connections');

    const again = await sessionOf({ port: s.port, minVersion: version, maxVersion: version, session });
    expect(again.reused).toBe(resumable);
    expect(s.server.stats().resumed).toBe(resumable ? 1 : 0);
    expect(s.server.context.stats().hits).toBe(resumable ? 1 : 0);
    await until(() => s!.connections.length === 2, 5000, 'the second connection');
    expect(s.connections[1].session!.reused).toBe(resumable);
    if (policy === 'drop' && ending !== 'close_notify') expect(removed.length).toBeGreaterThan(0);
  },
);

describe('the server ends the connection', () => {
  const serverCases: Array<[Version, Policy, 'end' | 'destroy', boolean]> = [];
  for (const version of ['TLSv1.2', 'TLSv1.3'] as Version[]) {
    serverCases.push([version, 'keep', 'end', true], [version, 'drop', 'end', true]);
    serverCases.push([version, 'keep', 'destroy', true], [version, 'drop', 'destroy', false]);
  }

  test.each(serverCases)(
    '%s uncleanClose=%s, server calls conn.%s(): resumed afterwards = %s',
    async (version, policy, how, resumable) => {
      s = await startServer({ uncleanClose: policy }, echo);
      const v = { minVersion: version, maxVersion: version };
      const { socket, session } = await connectWithSession({ port: s.port, ...v });
      socket.on('error', () => undefined); // a destroy may reach the client as a reset
      const clientEvents: string[] = [];
      socket.on('end', () => clientEvents.push('end'));
      const clientClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      const conn = s.connections[0];
      const closed = new Promise<CloseInfo>((resolve) => conn.once('close', resolve));
      let shutdownAtFinish = -1;
      conn.once('finish', () => (shutdownAtFinish = conn.getShutdown()));
      if (how === 'end') conn.end();
      else conn.destroy();
      const info = await within(closed, 10000, 'the server-side close');
      await within(clientClosed, 10000, 'the client to close');
      if (how === 'end') {
        expect(info).toEqual({ clean: true, ending: 'local' });
        expect(shutdownAtFinish & ShutdownFlags.SENT).toBe(ShutdownFlags.SENT); // close_notify went out
        expect(clientEvents).toEqual(['end']);
      } else {
        expect(info).toEqual({ clean: false, ending: 'local' });
      }
      await until(() => s!.server.stats().connections === 0, 5000, 'no open connections');

      const again = await sessionOf({ port: s.port, ...v, session });
      expect(again.reused).toBe(resumable);
      expect(s.server.stats().resumed).toBe(resumable ? 1 : 0);
      expect(s.server.context.stats().hits).toBe(resumable ? 1 : 0);
    },
  );

  // openssl s_client tells the two apart on the wire: 'closed' on close_notify, an unexpected EOF without.
  test.each([
    ['TLSv1.2', '-tls1_2'],
    ['TLSv1.3', '-tls1_3'],
  ])('%s: s_client reads close_notify after conn.end(), an unexpected EOF after conn.destroy()', async (_v, flag) => {
    for (const how of ['end', 'destroy'] as const) {
      const started = await startServer({}, (conn) =>
        conn.once('data', (d: Buffer) => {
          conn.write(d);
          if (how === 'end') conn.end();
          else conn.write('', () => conn.destroy());
        }),
      );
      try {
        const r = await sClient(started.port, [flag, '-ign_eof'], {
          input: 'hi\n',
          inputDelayMs: 500,
          timeoutMs: 20000,
        });
        expect(r.timedOut).toBe(false);
        if (how === 'end') {
          expect(r.stdout).toMatch(/^closed$/m);
          expect(r.code).toBe(0);
        } else {
          expect(r.stdout).not.toMatch(/^closed$/m);
          expect(r.stderr).toMatch(/unexpected eof/);
        }
        await until(
          () => started.connections.length === 1 && started.connections[0].closeInfo !== null,
          5000,
          'the server-side close',
        );
        expect(started.connections[0].closeInfo).toEqual({ clean: how === 'end', ending: 'local' });
      } finally {
        await stopServer(started.server);
      }
    }
  });
});
