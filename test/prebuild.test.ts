// Prebuilt binaries: prebuildify produces one under prebuilds/linux-x64/ and node-gyp-build loads it.
// Runs in a copy of the package so the build/ of this worktree (used by other test files running at
// the same time) is never rebuilt underneath them.
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { run } from './helpers';

const root = path.join(__dirname, '..');
const BUILD_TIMEOUT = 180_000;

describe('prebuild', () => {
  let pkg: string;
  beforeAll(() => {
    pkg = mkdtempSync(path.join(os.tmpdir(), 'osc-prebuild-'));
    for (const f of ['package.json', 'binding.gyp', 'native', 'dist']) cpSync(path.join(root, f), path.join(pkg, f), { recursive: true });
    symlinkSync(path.join(root, 'node_modules'), path.join(pkg, 'node_modules'), 'dir');
  });
  afterAll(() => rmSync(pkg, { recursive: true, force: true }));

  test(
    'npm run prebuild puts a stripped N-API binary under prebuilds/linux-x64 that the package loads',
    async () => {
      const scripts = JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8')).scripts as Record<string, string>;
      const script = 'prebuild';
      expect(scripts[script]).toMatch(/prebuildify --napi --strip/);
      const r = await run('npm', ['run', script], { cwd: pkg, timeoutMs: BUILD_TIMEOUT });
      if (r.timedOut) throw new Error(`prebuild took more than ${BUILD_TIMEOUT / 1000} s`);
      expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });

      const dir = path.join(pkg, 'prebuilds', `${process.platform}-${process.arch}`);
      const files = readdirSync(dir).filter((f) => f.endsWith('.node'));
      expect(files).toHaveLength(1);
      const prebuilt = path.join(dir, files[0]);
      expect(files[0]).toBe('openssl-session-cache.node');
      const ldd = await run('ldd', [prebuilt]);
      expect(ldd.stdout).not.toMatch(/libssl|libcrypto/);
      const nm = await run('nm', ['--defined-only', prebuilt]);
      expect(nm.stderr).toMatch(/no symbols/); // stripped

      // node-gyp-build prefers build/Release; without it, the prebuilt binary is the one.
      rmSync(path.join(pkg, 'build'), { recursive: true, force: true });
      expect(existsSync(path.join(pkg, 'build'))).toBe(false);
      const resolved = await run(process.execPath, ['-e', "console.log(require('node-gyp-build').path(process.argv[1]))", pkg], {
        cwd: pkg,
      });
      expect(resolved.stderr).toBe('');
      expect(resolved.stdout.trim()).toBe(prebuilt);

      const script2 = [
        'const m = require(process.argv[1]);',
        'const { cert, key } = m.generateCertificate();',
        'const ctx = new m.SecureContext({ cert, key });',
        "const loaded = Object.keys(require.cache).filter((k) => k.endsWith('.node'));",
        'console.log(JSON.stringify({ v: m.opensslVersion, sid: ctx.sessionIdContext.length, loaded }));',
      ].join('\n');
      // Whatever loads must be the prebuilt file, not a build named by OSC_ADDON_PATH (the sanitizer run).
      const { OSC_ADDON_PATH: _override, ...env } = process.env;
      const loaded = await run(process.execPath, ['-e', script2, pkg], { cwd: os.tmpdir(), env });
      expect(loaded.stderr).toBe('');
      const out = JSON.parse(loaded.stdout);
      expect(out.v).toContain(process.versions.openssl);
      expect(out.sid).toBe(32);
      expect(out.loaded).toEqual([prebuilt]);
    },
    BUILD_TIMEOUT + 60_000,
  );
});
