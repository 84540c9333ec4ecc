// Every option and argument is either supported or a clear TypeError/RangeError naming it; a stream that
// emits strings or objects fails its own connection, never the process.
import net from 'node:net';
import { Duplex } from 'node:stream';

import { SecureContext, TLSConnection, createServer, wrap } from '../lib';
import { CERT, HOST, connectClient, within } from './helpers';

const { cert, key } = CERT;

/** A Duplex that takes every write and emits nothing: a connection that never gets a ClientHello. */
function nullDuplex(): Duplex {
  return new Duplex({
    read() {},
    write(_c, _e, cb) {
      cb();
    },
  });
}

describe('SecureContext options', () => {
  test('a certificate and key are required', () => {
    expect(() => new SecureContext({})).toThrow(/needs a certificate and its key/);
    expect(() => new (SecureContext as unknown as new () => SecureContext)()).toThrow(TypeError);
    expect(() => new SecureContext({ cert })).toThrow(/needs a certificate and its key/);
  });

  test.each(['constructor', 'toString', '__proto__', 'hasOwnProperty', 'TLSv1.1'])(
    'minVersion/maxVersion %s is a RangeError',
    (v) => {
      expect(() => new SecureContext({ cert, key, minVersion: v as never })).toThrow(RangeError);
      expect(() => new SecureContext({ cert, key, maxVersion: v as never })).toThrow(
        /maxVersion must be 'TLSv1.2' or 'TLSv1.3'/,
      );
    },
  );

  test('ALPNProtocols: a string is a TypeError; names or the wire format in a Buffer are taken', () => {
    expect(() => new SecureContext({ cert, key, ALPNProtocols: 'h2' as never })).toThrow(
      /ALPNProtocols must be an array of strings/,
    );
    expect(() => new SecureContext({ cert, key, ALPNProtocols: [1] as never })).toThrow(TypeError);
    expect(() => new SecureContext({ cert, key, ALPNProtocols: Buffer.from([5, 0x68]) })).toThrow(/wire format/);
    expect(
      () => new SecureContext({ cert, key, ALPNProtocols: Buffer.from('\x02h2\x08http/1.1', 'latin1') }),
    ).not.toThrow();
  });

  test.each(['sigalgs', 'pfx', 'secureOptions', 'secureProtocol', 'dhparam', 'ecdhCurve'])(
    "node:tls's %s is refused by name",
    (option) => {
      expect(() => new SecureContext({ cert, key, [option]: 1 } as never)).toThrow(
        new RegExp(`option '${option}' of node:tls is not supported`),
      );
    },
  );

  test('an unknown option (a typo) is a TypeError naming it', () => {
    expect(() => new SecureContext({ cert, key, sessionTimout: 5 } as never)).toThrow(/unknown option 'sessionTimout'/);
  });

  test('types and ranges of the other options', () => {
    expect(() => new SecureContext({ cert, key, sessionTimeout: -1 })).toThrow(RangeError);
    expect(() => new SecureContext({ cert, key, sessionCacheSize: 2 ** 40 })).toThrow(RangeError);
    expect(() => new SecureContext({ cert, key, numTickets: 17 })).toThrow(RangeError);
    expect(() => new SecureContext({ cert, key, requestCert: 'yes' as never })).toThrow(
      /requestCert must be a boolean/,
    );
    expect(() => new SecureContext({ cert, key, ciphers: 5 as never })).toThrow(/ciphers must be a string/);
    expect(() => new SecureContext({ cert, key, ca: [5] as never })).toThrow(/ca must be a PEM/);
    expect(() => new SecureContext({ cert, key, sessionIdContext: 5 as never })).toThrow(/sessionIdContext must be/);
    const ctx = new SecureContext({ cert, key });
    expect(() => ctx.remove(5 as never)).toThrow(TypeError);
    expect(() => ctx.setSessionIdContext(undefined as never)).toThrow(TypeError);
    expect(() => (ctx.sessionTimeout = 1.5)).toThrow(RangeError);
  });
});

describe('createServer and listen options', () => {
  test.each([
    ['maxConnections', 2 ** 40],
    ['maxConnections', -1],
    ['maxPendingHandshakes', 2 ** 32],
    ['highWaterMark', 1e300],
    ['handshakeTimeout', 2 ** 31],
    ['handshakeTimeout', 1.5],
  ])('%s: %d is a RangeError (never truncated)', (name, value) => {
    expect(() => createServer({ cert, key, [name]: value })).toThrow(new RegExp(`${name} must be an integer`));
  });

  test('uncleanClose must be keep or drop; context options beside context are refused; unknown options too', () => {
    expect(() => createServer({ cert, key, uncleanClose: 'maybe' as never })).toThrow(RangeError);
    const context = new SecureContext({ cert, key });
    expect(() => createServer({ context, cert })).toThrow(/option 'cert' belongs to the SecureContext/);
    expect(() => createServer({ context, SNICallback: 5 } as never)).toThrow(/SNICallback must be a function/);
    expect(() => createServer({ cert, key, allowHalfOpen: true } as never)).toThrow(/allowHalfOpen/);
    expect(() => createServer({ cert, key }, 'listener' as never)).toThrow(TypeError);
  });

  test('maxConnections 2³²−1 is taken as it is (not wrapped to 0 = unlimited)', () => {
    expect(() => createServer({ cert, key, maxConnections: 2 ** 32 - 1 })).not.toThrow();
  });

  test('listen({ path }) is a TypeError, not a TCP listener on every interface; bad ports and options too', () => {
    const server = createServer({ cert, key });
    expect(() => server.listen({ path: '/tmp/osc.sock' } as never)).toThrow(/path.*not supported/);
    expect(() => server.listen({ port: 70000 })).toThrow(RangeError);
    expect(() => server.listen({ port: 0, exclusive: true } as never)).toThrow(/unknown option 'exclusive'/);
    expect(() => server.listen('443' as never)).toThrow(TypeError);
    expect(server.listening).toBe(false);
    expect(server.address()).toBeNull();
  });
});

describe('TLSConnection.setShutdown', () => {
  test.each([-1, 4, 0xffff, 1.5, NaN, Infinity])('%d is a RangeError', (flags) => {
    const conn = wrap(nullDuplex(), { cert, key });
    expect(() => conn.setShutdown(flags)).toThrow(RangeError);
    conn.destroy();
  });

  test.each(['x', null, undefined, {}])('%p is a TypeError', (flags) => {
    const conn = wrap(nullDuplex(), { cert, key });
    expect(() => conn.setShutdown(flags as never)).toThrow(TypeError);
    conn.destroy();
  });

  test('0 to 3 are taken', () => {
    const conn = wrap(nullDuplex(), { cert, key });
    for (const flags of [0, 1, 2, 3]) expect(() => conn.setShutdown(flags)).not.toThrow();
    conn.destroy();
  });
});

describe('wrap() over streams that do not carry bytes', () => {
  test('a net.Socket with setEncoding(), or an object-mode Duplex, is refused at wrap() time', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, HOST, r));
    const port = (server.address() as net.AddressInfo).port;
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const client = net.connect(port, HOST);
    const socket = await accepted;
    socket.setEncoding('utf8');
    expect(() => wrap(socket, { cert, key })).toThrow(/emits utf8 strings/);
    expect(() =>
      wrap(
        new Duplex({
          objectMode: true,
          read() {},
          write(_c, _e, cb) {
            cb();
          },
        }),
        { cert, key },
      ),
    ).toThrow(/emits objects/);
    expect(() => wrap({} as never, { cert, key })).toThrow(/needs a Duplex/);
    client.destroy();
    socket.destroy();
    server.close();
  });

  test('a stream that starts emitting strings later: an error on that connection, nothing thrown, others unaffected', async () => {
    const context = new SecureContext({ cert, key });
    const duplex = new Duplex({
      read() {},
      write(_c, _e, cb) {
        cb();
      },
    });
    const conn: TLSConnection = wrap(duplex, { context });
    const errors: Error[] = [];
    conn.on('error', (e) => errors.push(e));
    const closed = within(new Promise((r) => conn.once('close', r)), 5000, 'close');
    duplex.setEncoding('utf8');
    duplex.push(Buffer.from([0x16, 0x03, 0x01]));
    expect(await closed).toMatchObject({ ending: 'error' });
    expect((errors[0] as Error & { code?: string }).code).toBe('ERR_INVALID_ARG_TYPE');
    // The context and other connections go on.
    const server = net.createServer((s) => {
      const c = wrap(s, { context });
      c.on('error', () => undefined);
      c.pipe(c);
    });
    await new Promise<void>((r) => server.listen(0, HOST, r));
    const res = await connectClient((server.address() as net.AddressInfo).port);
    expect(res.reused).toBe(false);
    server.close();
  });
});
