#!/usr/bin/env node
// `npm run prebuild [-- prebuildify options]`: builds the N-API binary for this platform with prebuildify
// (`--napi --strip`, and `--tag-libc` on Linux) into prebuilds/<platform>-<arch>/, named
// openssl-session-cache.glibc.node or .musl.node on Linux and openssl-session-cache.node elsewhere: the
// file node-gyp-build loads when the package has no build/ (as users install it).
//
// prebuildify moves the binary it built out of build/Release, which would leave this checkout without a
// local build (node-gyp-build prefers build/Release, and the tests check it): it is copied back.
'use strict';
const { spawnSync } = require('node:child_process');
const { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
// The libc tag keeps a glibc binary from being loaded on Alpine (musl) and the other way round; macOS and
// Windows have one libc each (prebuildify would name theirs "glibc").
const args = ['--napi', '--strip', ...(process.platform === 'linux' ? ['--tag-libc'] : []), ...process.argv.slice(2)];
console.log(`prebuild: prebuildify ${args.join(' ')}`);
const started = Date.now();
const r = spawnSync(process.execPath, [require.resolve('prebuildify/bin.js'), ...args], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);

// The binary just made: the newest .node under prebuilds/ (a cross-arch build names its own directory).
const made = [];
const prebuilds = path.join(root, 'prebuilds');
for (const dir of readdirSync(prebuilds)) {
  for (const f of readdirSync(path.join(prebuilds, dir))) {
    const file = path.join(prebuilds, dir, f);
    if (f.endsWith('.node') && statSync(file).mtimeMs >= started - 1000) made.push(file);
  }
}
if (made.length !== 1) {
  console.error(`prebuild: expected one new binary under prebuilds/, found ${made.length}: ${made.join(', ')}`);
  process.exit(1);
}
const release = path.join(root, 'build', 'Release');
const local = path.join(release, 'openssl_session_cache.node');
// Only a binary for this machine goes back (a cross-compiled one could not load here).
if (path.basename(path.dirname(made[0])) === `${process.platform}-${process.arch}` && !existsSync(local)) {
  mkdirSync(release, { recursive: true });
  copyFileSync(made[0], local);
}
console.log(`prebuild: ${path.relative(root, made[0])}${existsSync(local) ? `, and ${path.relative(root, local)}` : ''}`);
