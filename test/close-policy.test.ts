// uncleanClose: what happens to a session when the client leaves with close_notify, FIN or RST.
import { PassThrough } from 'node:stream';

import { CloseInfo, UncleanClosePolicy, wrap } from '../lib';
import { ClientEnding, TestServer, connectClient, makeContext } from './helpers';

const EXPECTED_CLOSE: Record<ClientEnding, CloseInfo> = {
  close_notify: { clean: true, ending: 'close_notify' },
  fin: { clean: false, ending: 'eof' },
  rst: { clean: false, ending: 'reset' },
};

const cases: Array<[UncleanClosePolicy, ClientEnding, boolean]> = [
  ['keep', 'close_notify', true],
  ['keep', 'fin', true],
  ['keep', 'rst', true],
  ['drop', 'close_notify', true],
  ['drop', 'fin', false],
  ['drop', 'rst', false],
];

describe.each(['TLSv1.2', 'TLSv1.3'] as const)('close policy, %s', (version) => {
  const v = { minVersion: version, maxVersion: version };
  const entries = version === 'TLSv1.2' ? 1 : 2; // TLS 1.3: numTickets (2) cache entries

  test.each(cases)('uncleanClose %s, client ends with %s: resumable=%s', async (policy, ending, resumable) => {
    const ctx = makeContext();
    const srv = await TestServer.start(ctx, { uncleanClose: policy });
    try {
      const first = await connectClient(srv.port, { ...v, ending });
      expect(first.protocol).toBe(version);
      expect(first.session).toBeInstanceOf(Buffer);
      const c0 = await srv.connection(0);
      expect((await c0.secure).reused).toBe(false);
      const info = await c0.closed;
      expect(info).toEqual(EXPECTED_CLOSE[ending]);
      expect(c0.errors).toEqual([]); // an unclean close is not an error event
      expect(ctx.stats().number).toBe(resumable ? entries : 0); // drop removes every ticket's entry

      const second = await connectClient(srv.port, { ...v, session: first.session });
      expect(second.reused).toBe(resumable);
      expect((await (await srv.connection(1)).secure).reused).toBe(resumable);
      expect(ctx.stats().hits).toBe(resumable ? 1 : 0);
    } finally {
      await srv.close();
    }
  });
});

test('the default policy is keep: a session survives a FIN without close_notify', async () => {
  const ctx = makeContext();
  const srv = await TestServer.start(ctx);
  try {
    const v = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const;
    const first = await connectClient(srv.port, { ...v, ending: 'fin' });
    expect(await (await srv.connection(0)).closed).toEqual({ clean: false, ending: 'eof' });
    const second = await connectClient(srv.port, { ...v, session: first.session });
    expect(second.reused).toBe(true);
  } finally {
    await srv.close();
  }
});

test('uncleanClose is validated', () => {
  const ctx = makeContext();
  expect(() => wrap(new PassThrough(), { context: ctx, uncleanClose: 'sometimes' as UncleanClosePolicy })).toThrow(
    RangeError,
  );
});
