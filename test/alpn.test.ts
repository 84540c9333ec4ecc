// ALPN selection by server preference; refusal when nothing matches.
import type { TLSError } from '../lib';
import { TestServer, connectClient, connectExpectingFailure, makeContext } from './helpers';

describe('ALPN', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await TestServer.start(makeContext({ ALPNProtocols: ['h2', 'http/1.1'] }));
  });
  afterAll(() => srv.close());

  test('a client offering http/1.1 gets http/1.1', async () => {
    const before = srv.conns.length;
    const r = await connectClient(srv.port, { ALPNProtocols: ['http/1.1'] });
    expect(r.alpn).toBe('http/1.1');
    expect((await srv.conns[before].secure).alpn).toBe('http/1.1');
  });

  test("the server's preference wins", async () => {
    const before = srv.conns.length;
    const r = await connectClient(srv.port, { ALPNProtocols: ['http/1.1', 'h2'] });
    expect(r.alpn).toBe('h2');
    expect((await srv.conns[before].secure).alpn).toBe('h2');
  });

  test('a client without ALPN still connects, alpn null', async () => {
    const before = srv.conns.length;
    await connectClient(srv.port);
    expect((await srv.conns[before].secure).alpn).toBeNull();
  });

  test('a client offering only unknown protocols is refused', async () => {
    const before = srv.conns.length;
    const err = await connectExpectingFailure(srv.port, { ALPNProtocols: ['spdy/3'] });
    expect(err).not.toBeNull();
    const c = await srv.connection(before);
    await c.closed;
    expect(c.errors[0]).toMatchObject({ code: 'ERR_OSC_HANDSHAKE' });
    expect((c.errors[0] as TLSError).reason).toMatch(/application protocol/);
  });
});
