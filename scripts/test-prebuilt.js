#!/usr/bin/env node
// The test suite against a prebuilt binary (the release workflow: a binary built on Node 20, tested on Node
// 20, 22 and 24): `node scripts/test-prebuilt.js [jest arguments]` in a checkout installed with
// `npm ci --ignore-scripts` and prebuilds/ filled. It fails unless node-gyp-build loads this platform's
// file under prebuilds/ (no build/, no OSC_ADDON_PATH), then compiles the TypeScript and runs jest.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
function fail(message) {
  console.error(`test-prebuilt: ${message}`);
  process.exit(1);
}
if (existsSync(path.join(root, 'build'))) fail('build/ exists: node-gyp-build would load it instead of the prebuilt binary');
if (process.env.OSC_ADDON_PATH) fail('OSC_ADDON_PATH is set: the package would load that instead of the prebuilt binary');
const addon = require('node-gyp-build').path(root);
const expected = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
if (path.dirname(addon) !== expected) fail(`node-gyp-build chose ${addon}, not a file in ${expected}`);
console.log(`test-prebuilt: Node ${process.version} (OpenSSL ${process.versions.openssl}) on ${path.relative(root, addon)}`);

for (const [what, args] of [
  ['tsc', [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json']],
  ['jest', [require.resolve('jest/bin/jest'), ...process.argv.slice(2)]],
]) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) fail(`${what} exited with ${r.status ?? r.signal}`);
}
