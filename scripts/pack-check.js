#!/usr/bin/env node
// `npm run check:pack`: the package as a user gets it, on a machine with no compiler.
//
//  1. `npm run prebuild` makes this platform's N-API binary under prebuilds/ (stripped, libc-tagged, no
//     libssl/libcrypto of its own) and leaves build/Release with a .node.
//  2. `npm pack` holds that binary, dist/, the ES module entry, the sources for a source build, README,
//     LICENSE and CHANGELOG, and nothing else (no tests, benchmarks, scripts).
//  3. The tarball installs into empty directories, with --ignore-scripts and with the install script run,
//     while PATH has no compiler (cc, gcc, g++, make, python… are shims that fail): node-gyp-build must
//     load the prebuilt binary and never build.
//  4. There, require() and import of the package serve a TLS connection and resume its session (TLS 1.2
//     by session ID, TLS 1.3 statefully), on this Node and on Node 22/24 when scripts/node-versions has
//     them; the exports map hides dist/ internals; the bin runs; TypeScript resolves the types from
//     CommonJS and ES modules.
//
// It rebuilds build/ of this checkout: run it when no test suite is running in the same directory.
//
// Options: --no-prebuild checks the prebuilds/ already there instead of making one (the release workflow,
// after collecting every platform's); --expect a,b,… requires those files under prebuilds/ in the tarball
// (e.g. linux-x64/openssl-session-cache.musl.node); --keep keeps the temporary directory.
'use strict';
const { spawnSync } = require('node:child_process');
const { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const platformDir = `${process.platform}-${process.arch}`;
const work = mkdtempSync(path.join(os.tmpdir(), 'osc-pack-'));
const argv = process.argv.slice(2);
const keep = argv.includes('--keep');
const makePrebuild = !argv.includes('--no-prebuild');
const expectArg = argv.indexOf('--expect');
const expectFiles = expectArg >= 0 ? argv[expectArg + 1].split(',').map((f) => `prebuilds/${f}`) : [];
let checks = 0;
let step = '';
const started = Date.now();

function ok(cond, what) {
  if (!cond) throw new Error(`${step}: ${what}`);
  checks++;
}
function section(name) {
  step = name;
  console.log(`\npack-check: ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}
/** Runs a command; throws with its output unless it exits 0 (or `allowFail`). */
function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(`${step}: ${cmd} ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

// A PATH on which no compiler, make or Python can be found: shims that fail loudly come first.
function noCompilerEnv() {
  const shims = path.join(work, 'no-compiler-bin');
  mkdirSync(shims);
  const tools = ['cc', 'c++', 'gcc', 'g++', 'clang', 'clang++', 'make', 'gmake', 'cmake', 'python', 'python3', 'ld'];
  for (const t of tools) {
    writeFileSync(path.join(shims, t), `#!/bin/sh\necho "pack-check: no compiler here ($0 called)" >&2\nexit 1\n`);
    chmodSync(path.join(shims, t), 0o755);
  }
  const env = { ...process.env, PATH: `${shims}${path.delimiter}${process.env.PATH}`, CC: 'false', CXX: 'false' };
  // The installed package must load its own prebuilt binary: no override from the sanitizer run.
  delete env.OSC_ADDON_PATH;
  delete env.LD_PRELOAD;
  for (const t of ['cc', 'g++', 'make', 'python3']) {
    const w = sh('sh', ['-c', `command -v ${t}`], { env, allowFail: true }).stdout.trim();
    ok(w === '' || w.startsWith(shims), `${t} is still on PATH at ${w}`);
  }
  return env;
}

// The client side of the check, in the consumer's directory: a server from the package, two clients per
// protocol, the second offering the first one's session.
const RESUME_BODY = `
async function check(m, tls, loaded) {
  const { cert, key } = m.generateCertificate();
  const server = m.createServer({ cert, key }, (conn) => conn.pipe(conn));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  const connect = (version, session) => new Promise((resolve, reject) => {
    const c = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: version, maxVersion: version, session });
    const sessions = [];
    c.on('session', (s) => sessions.push(s));
    c.on('error', reject);
    c.once('secureConnect', () => {
      c.write('ping');
      c.once('data', () => {
        const reused = c.isSessionReused();
        c.end();
        c.once('close', () => resolve({ reused, session: sessions[sessions.length - 1] }));
      });
    });
  });
  const out = { node: process.version, openssl: m.opensslVersion };
  for (const v of ['TLSv1.2', 'TLSv1.3']) {
    const first = await connect(v);
    const second = await connect(v, first.session);
    out[v] = [first.reused, second.reused];
  }
  out.stats = server.stats();
  out.loaded = loaded();
  await new Promise((resolve) => server.close(resolve));
  return out;
}
`;
const RESUME_CJS = `'use strict';
const tls = require('node:tls');
const m = require('openssl-session-cache');
let deep = null;
try { require('openssl-session-cache/dist/server.js'); } catch (e) { deep = e.code; }
const version = require('openssl-session-cache/package.json').version;
${RESUME_BODY}
check(m, tls, () => Object.keys(require.cache).filter((k) => k.endsWith('.node'))).then((out) => {
  console.log(JSON.stringify({ ...out, deep, version, kind: 'require' }));
});
`;
const RESUME_ESM = `import tls from 'node:tls';
import { createRequire } from 'node:module';
import * as m from 'openssl-session-cache';
import defaultExport from 'openssl-session-cache';
const require = createRequire(import.meta.url);
let deep = null;
try { await import('openssl-session-cache/dist/server.js'); } catch (e) { deep = e.code; }
const same = defaultExport.createServer === m.createServer && require('openssl-session-cache').SecureContext === m.SecureContext;
const names = Object.keys(m).filter((k) => k !== 'default').sort().join(',') === Object.keys(require('openssl-session-cache')).sort().join(',');
${RESUME_BODY}
const out = await check(m, tls, () => Object.keys(require.cache).filter((k) => k.endsWith('.node')));
console.log(JSON.stringify({ ...out, deep, same, names, kind: 'import' }));
`;

function nodesToTry() {
  const nodes = [process.execPath];
  for (const n of ['node22', 'node24']) {
    const bin = path.join(__dirname, 'node-versions', 'node_modules', n, 'bin', 'node');
    if (existsSync(bin)) nodes.push(bin);
  }
  return nodes;
}

function main() {
  if (makePrebuild) {
    section('npm run prebuild');
    sh('npm', ['run', 'prebuild'], { cwd: root, stdio: 'inherit' });
    const release = path.join(root, 'build', 'Release');
    ok(existsSync(release) && readdirSync(release).some((f) => f.endsWith('.node')), 'build/Release has no .node after npm run prebuild');
  } else {
    section('the prebuilds/ already there');
  }
  const prebuildDir = path.join(root, 'prebuilds', platformDir);
  const binaries = readdirSync(prebuildDir).filter((f) => f.endsWith('.node'));
  const expected = process.platform === 'linux' ? /^openssl-session-cache\.(glibc|musl)\.node$/ : /^openssl-session-cache(\.glibc)?\.node$/;
  const libc = process.platform !== 'linux' ? '' : process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'musl';
  const own = binaries.filter((f) => expected.test(f) && (libc === '' || f.includes(`.${libc}.`)));
  ok(own.length === 1, `prebuilds/${platformDir} holds ${binaries.join(', ') || 'nothing'}, not one ${expected} for ${libc || process.platform}`);
  const binary = `prebuilds/${platformDir}/${own[0]}`;
  if (process.platform === 'linux') {
    const ldd = sh('ldd', [path.join(root, binary)]).stdout;
    ok(/libc\.so/.test(ldd) && !/libssl|libcrypto/.test(ldd), `${binary} links an OpenSSL of its own:\n${ldd}`);
    const nm = sh('nm', ['--defined-only', path.join(root, binary)], { allowFail: true });
    ok(/no symbols/.test(nm.stderr), `${binary} is not stripped`);
    const versions = sh('objdump', ['-T', path.join(root, binary)], { allowFail: true }).stdout.match(/\b(GLIBC|GLIBCXX)_[0-9.]+/g) ?? [];
    const newest = (tag) => versions.filter((v) => v.startsWith(`${tag}_`)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).pop();
    if (libc === 'glibc') console.log(`pack-check: needs ${newest('GLIBC') ?? 'no GLIBC'} and ${newest('GLIBCXX') ?? 'no GLIBCXX'} (built on this machine's toolchain)`);
  }
  console.log(`pack-check: ${binary}`);

  section('npm pack');
  const packed = sh('npm', ['pack', '--json', '--pack-destination', work], { cwd: root });
  const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')))[0];
  const tarball = path.join(work, info.filename);
  const files = info.files.map((f) => f.path);
  const sources = JSON.parse(readFileSync(path.join(root, 'binding.gyp'), 'utf8')).targets[0].sources;
  const must = [binary, ...expectFiles, 'package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'binding.gyp', 'CMakeLists.txt', 'esm/index.mjs',
    'dist/index.js', 'dist/index.d.ts', 'dist/thread-worker.js', pkg.bin['openssl-session-cache'], ...sources];
  for (const f of must) ok(files.includes(f), `the tarball lacks ${f}`);
  for (const h of readdirSync(path.join(root, 'native')).filter((f) => f.endsWith('.h'))) ok(files.includes(`native/${h}`), `the tarball lacks native/${h}`);
  console.log(`pack-check: prebuilt binaries in the tarball: ${files.filter((f) => f.startsWith('prebuilds/')).join(', ')}`);
  const stray = files.filter((f) => !/^(dist|esm|prebuilds|native)\//.test(f) && !must.includes(f));
  ok(stray.length === 0, `the tarball holds what users do not need: ${stray.join(', ')}`);
  ok(!files.some((f) => /^(test|bench|soak|fuzz|scripts|lib|build|examples)\//.test(f) || f.endsWith('.tsbuildinfo')), 'the tarball holds tests, benchmarks or sources of dist/');
  console.log(`pack-check: ${info.filename}: ${files.length} files, ${(info.size / 1024).toFixed(0)} KiB`);

  const env = noCompilerEnv();
  for (const mode of ['--ignore-scripts', 'with install scripts']) {
    section(`npm install of the tarball, ${mode}, no compiler on PATH`);
    const dir = path.join(work, mode === '--ignore-scripts' ? 'consumer-ignore-scripts' : 'consumer-scripts');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    const args = ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts'];
    if (mode === '--ignore-scripts') args.push('--ignore-scripts');
    const r = sh('npm', args, { cwd: dir, env });
    ok(!/no compiler here/.test(r.stdout + r.stderr), `the install tried to compile:\n${r.stdout}\n${r.stderr}`);
    const ranInstall = /openssl-session-cache@[^ ]+ install\n> node-gyp-build/.test(r.stdout);
    ok(ranInstall === (mode !== '--ignore-scripts'), `the package's install script ${ranInstall ? 'ran' : 'did not run'}:\n${r.stdout}`);
    const installed = path.join(dir, 'node_modules', 'openssl-session-cache');
    ok(!existsSync(path.join(installed, 'build')), 'the install built the addon from source');
    writeFileSync(path.join(dir, 'resume.cjs'), RESUME_CJS);
    writeFileSync(path.join(dir, 'resume.mjs'), RESUME_ESM);
    const prebuilt = path.join(installed, binary);

    for (const node of nodesToTry()) {
      for (const script of ['resume.cjs', 'resume.mjs']) {
        const out = sh(node, [script], { cwd: dir, env, timeout: 60_000 });
        const res = JSON.parse(out.stdout.trim().split('\n').pop());
        const where = `${script} on Node ${res.node}`;
        ok(out.stderr === '', `${where} wrote to stderr: ${out.stderr}`);
        ok(res['TLSv1.2'][0] === false && res['TLSv1.2'][1] === true, `${where}: TLS 1.2 session not resumed ${JSON.stringify(res)}`);
        ok(res['TLSv1.3'][0] === false && res['TLSv1.3'][1] === true, `${where}: TLS 1.3 session not resumed ${JSON.stringify(res)}`);
        ok(res.stats.handshakes === 4 && res.stats.resumed === 2, `${where}: server counted ${JSON.stringify(res.stats)}`);
        ok(JSON.stringify(res.loaded) === JSON.stringify([prebuilt]), `${where} loaded ${res.loaded}, not ${prebuilt}`);
        ok(res.deep === 'ERR_PACKAGE_PATH_NOT_EXPORTED', `${where}: a deep import of dist/ gave ${res.deep}`);
        if (script === 'resume.cjs') ok(res.version === pkg.version, `${where}: package.json subpath gave ${res.version}`);
        else ok(res.same && res.names, `${where}: import and require() differ (same ${res.same}, names ${res.names})`);
        console.log(`pack-check: ${where} (${res.openssl}): TLS 1.2 and 1.3 resumed, ${path.relative(dir, res.loaded[0])}`);
      }
    }
  }

  section('the bin and the types, from the installed package');
  const dir = path.join(work, 'consumer-scripts');
  const bin = path.join(dir, 'node_modules', '.bin', 'openssl-session-cache');
  ok(existsSync(bin), 'npm linked no openssl-session-cache bin');
  ok(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n'), 'the bin has no node shebang');
  const banner = runBin(bin, env);
  ok(/^TLS echo server on 127\.0\.0\.1:\d+/m.test(banner), `the bin printed: ${banner}`);
  writeFileSync(path.join(dir, 'types.cts'), "import { createServer, SecureContext, type CacheStats } from 'openssl-session-cache';\nconst s: CacheStats = new SecureContext({ cert: '', key: '' }).stats();\nexport { createServer, s };\n");
  writeFileSync(path.join(dir, 'types.mts'), "import { createServer, wrap, type ServerOptions } from 'openssl-session-cache';\nimport osc from 'openssl-session-cache';\nconst o: ServerOptions = { uncleanClose: 'drop' };\nexport { createServer, wrap, o, osc };\n");
  const tsc = require.resolve('typescript/bin/tsc');
  for (const f of ['types.cts', 'types.mts']) {
    const r = sh(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--types', 'node',
      '--typeRoots', path.join(root, 'node_modules', '@types'), f], { cwd: dir, allowFail: true });
    ok(r.status === 0, `TypeScript cannot use the package from ${f}:\n${r.stdout}${r.stderr}`);
  }
  console.log('pack-check: bin runs; types resolve from .cts and .mts');

  console.log(`\npack-check: ${checks} checks passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** Starts the installed bin on a free port and returns what it printed before SIGTERM. */
function runBin(bin, env) {
  const r = spawnSync(
    process.execPath,
    ['-e', `
      const { spawn } = require('node:child_process');
      const c = spawn(process.argv[1], ['--port', '0', '--host', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      const t = setTimeout(() => c.kill('SIGKILL'), 15000);
      c.stdout.on('data', (d) => { out += d; if (/TLS echo server on/.test(out) && !c.sent) { c.sent = true; c.kill('SIGTERM'); } });
      c.on('close', () => { clearTimeout(t); process.stdout.write(out); });`, bin],
    { encoding: 'utf8', env, timeout: 30_000 },
  );
  return r.stdout;
}

try {
  main();
} catch (err) {
  console.error(`\npack-check: FAILED — ${err.message}`);
  process.exitCode = 1;
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
  else console.log(`pack-check: kept ${work}`);
}
