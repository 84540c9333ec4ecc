// An unsupported runtime fails at require() with one sentence and a stable code, before the addon loads.
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { MIN_NODE, UNSUPPORTED_RUNTIME, assertSupportedRuntime, unsupportedRuntime } from '../lib/runtime';
import { run } from './helpers';

const root = path.join(__dirname, '..');
const node20 = { node: '20.17.0', openssl: '3.0.13+quic', uv: '1.46.0', napi: '9' };

describe('unsupportedRuntime', () => {
  test.each([
    ['Node 20.17 (the oldest in engines)', node20],
    ['Node 22 on OpenSSL 3.5', { node: '22.23.5', openssl: '3.5.9' }],
    ['Node 24', { node: '24.22.3', openssl: '3.5.9' }],
    ['a Node with a newer OpenSSL', { node: '26.0.0', openssl: '4.0.0' }],
    ['this process', process.versions],
  ])('%s is supported', (_name, versions) => {
    expect(unsupportedRuntime(versions)).toBeNull();
  });

  test.each([
    ['Electron', { ...node20, electron: '31.0.0' }, /Electron 31\.0\.0 uses BoringSSL/],
    ['Bun', { node: '22.6.0', bun: '1.1.30', boringssl: 'abc' }, /Bun 1\.1\.30 uses BoringSSL/],
    ['Deno', { node: '20.11.1', deno: '2.0.0' }, /Deno 2\.0\.0 has no OpenSSL/],
    ['a runtime reporting BoringSSL', { node: '22.0.0', openssl: 'BoringSSL' }, /has BoringSSL \(BoringSSL\)/],
    ['a Node built without OpenSSL', { node: '22.23.5' }, /Node\.js 22\.23\.5 was built without OpenSSL/],
    ['Node 20.16', { ...node20, node: '20.16.0' }, /needs Node\.js >= 20\.17, and this is Node\.js 20\.16\.0\./],
    [
      'Node 18',
      { node: '18.20.4', openssl: '3.0.13+quic' },
      /needs Node\.js >= 20\.17, and this is Node\.js 18\.20\.4\./,
    ],
    ['no node version at all', { openssl: '3.0.0' }, /needs Node\.js >= 20\.17, and this is not Node\.js\./],
    ['a Node linked to OpenSSL 1.1', { node: '20.18.0', openssl: '1.1.1w' }, /runs on OpenSSL 1\.1\.1w/],
  ])('%s is refused in one sentence', (_name, versions, reason) => {
    const r = unsupportedRuntime(versions);
    expect(r).toMatch(reason);
    // One sentence that names the package: one line, one full stop at the end.
    expect(r).toMatch(/^openssl-session-cache .*\.$/);
    expect(r).not.toMatch(/\.\s+[A-Z]|\n/);
  });

  test('assertSupportedRuntime throws an Error with the stable code', () => {
    expect(() => assertSupportedRuntime(process.versions)).not.toThrow();
    let err: unknown;
    try {
      assertSupportedRuntime({ ...node20, electron: '31.0.0' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({
      code: UNSUPPORTED_RUNTIME,
      message: unsupportedRuntime({ ...node20, electron: '31.0.0' }),
    });
  });

  test('MIN_NODE is engines.node of package.json', () => {
    const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
    expect(pkg.engines.node).toBe(`>=${MIN_NODE[0]}.${MIN_NODE[1]}`);
  });

  test('require() of the package fails with that error, before the addon is loaded', async () => {
    // A process that looks like Electron: the package must throw its sentence, and no .node be loaded.
    const script = [
      "Object.defineProperty(process, 'versions', { value: { ...process.versions, electron: '31.0.0' } });",
      'try { require(process.argv[1]); console.log("loaded"); } catch (e) {',
      "  const addons = Object.keys(require.cache).filter((k) => k.endsWith('.node'));",
      '  console.log(JSON.stringify({ code: e.code, message: e.message, addons }));',
      '}',
    ].join('\n');
    const r = await run(process.execPath, ['-e', script, path.join(root, 'dist')]);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({
      code: UNSUPPORTED_RUNTIME,
      message: unsupportedRuntime({ ...process.versions, electron: '31.0.0' }),
      addons: [],
    });
  });
});
