// The addon runs on the OpenSSL inside this node process and links no OpenSSL of its own.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

import { opensslVersion } from '../lib';

const release = path.join(__dirname, '..', 'build', 'Release');

describe('build', () => {
  test('opensslVersion names the OpenSSL of the running node', () => {
    expect(typeof opensslVersion).toBe('string');
    expect(opensslVersion).toContain(process.versions.openssl);
    expect(opensslVersion).toMatch(/^OpenSSL 3\./);
  });

  test('the built addon links no libssl/libcrypto', () => {
    const addons = readdirSync(release).filter((f) => f.endsWith('.node'));
    expect(addons.length).toBeGreaterThan(0);
    for (const f of addons) {
      const out = execFileSync('ldd', [path.join(release, f)], { encoding: 'utf8' });
      expect(out).toMatch(/libc\.so/); // ldd did list the dependencies
      expect(out).not.toMatch(/libssl|libcrypto/);
    }
  });
});
