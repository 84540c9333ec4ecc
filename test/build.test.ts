// The addon runs on the OpenSSL inside this node process and links no OpenSSL of its own.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

import { opensslVersion } from '../lib';
import { onlyWhere } from './helpers';

const root = path.join(__dirname, '..');

/** The binary the package loads: the one OSC_ADDON_PATH names, else node-gyp-build's choice (build/ or prebuilds/). */
function loadedAddon(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return process.env.OSC_ADDON_PATH ?? (require('node-gyp-build') as { path(dir: string): string }).path(root);
}

describe('build', () => {
  test('opensslVersion names the OpenSSL of the running node', () => {
    expect(typeof opensslVersion).toBe('string');
    expect(opensslVersion).toContain(process.versions.openssl);
    expect(opensslVersion).toMatch(/^OpenSSL 3\./);
  });

  // Windows resolves OpenSSL's symbols through node.lib, from node.exe itself: nothing to look for there.
  onlyWhere(
    test,
    process.platform !== 'win32',
    'OpenSSL is linked through node.lib, from node.exe',
  )('the addon links no libssl/libcrypto', () => {
    const addon = loadedAddon();
    if (process.platform === 'darwin') {
      const out = execFileSync('otool', ['-L', addon], { encoding: 'utf8' });
      expect(out).toMatch(/libc\+\+|libSystem/); // otool did list the dependencies
      expect(out).not.toMatch(/libssl|libcrypto/);
    } else {
      const out = execFileSync('ldd', [addon], { encoding: 'utf8' });
      expect(out).toMatch(/libc\.so|libc\.musl|ld-musl/); // ldd did list the dependencies
      expect(out).not.toMatch(/libssl|libcrypto/);
    }
  });
});
