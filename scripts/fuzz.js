#!/usr/bin/env node
// Builds the libFuzzer harness fuzz/engine_fuzzer.cc with clang (-fsanitize=fuzzer,address,undefined)
// against the system OpenSSL into build-fuzz/, then fuzzes a copy of the committed seeds:
//   npm run fuzz                          60 s on fuzz/corpus + fuzz/seeds, with fuzz/tls.dict
//   npm run fuzz -- -max_total_time=600   any libFuzzer flags (then no default time limit)
//   npm run fuzz -- crash-1234            run given inputs only (reproduce a crash)
//   npm run fuzz -- --build-only          build and stop
// Installs clang and libFuzzer's runtime with apt-get when they are missing (Debian bookworm).
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const nativeDir = path.join(root, 'native');
const fuzzDir = path.join(root, 'fuzz');
const out = path.join(root, 'build-fuzz');
const binary = path.join(out, 'engine_fuzzer');
// Debian bookworm: clang-14 brings the compiler; libclang-rt-14-dev (only "recommended" by it) has
// libclang_rt.fuzzer-x86_64.a and the sanitizer runtimes; libssl-dev the OpenSSL 3.0 headers.
const APT_PACKAGES = ['clang-14', 'libclang-rt-14-dev', 'libssl-dev'];
const CLANGS = ['clang++-14', 'clang++', 'clang++-16', 'clang++-15', 'clang++-17', 'clang++-18', 'clang++-19'];
// The same definitions as binding.gyp, less the N-API ones.
const DEFINES = ['-DOPENSSL_API_COMPAT=30000', '-DOPENSSL_SUPPRESS_DEPRECATED'];
const FLAGS = ['-std=c++17', '-g', '-O1', '-fno-omit-frame-pointer', '-fsanitize=fuzzer,address,undefined',
  '-fno-sanitize-recover=undefined', '-Wall', '-Wextra', '-Wno-unused-parameter'];
// A file that includes any of these (directly or through a native/ header) belongs to the addon only.
const BINDING_HEADERS = /^\s*#\s*include\s*<(napi\.h|uv\.h|node_api\.h|node\.h|js_native_api\.h)>/m;

function log(msg) {
  process.stderr.write(`fuzz: ${msg}\n`);
}

function fail(sentence) {
  process.stderr.write(`fuzz: ${sentence}\n`);
  process.exit(1);
}

function quiet(cmd, args) {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return null;
  }
}

// A clang that can link a libFuzzer binary (the runtime is a separate package on Debian).
function findClang() {
  for (const cxx of CLANGS) {
    const version = quiet(cxx, ['--version']);
    if (version === null) continue;
    const runtimeDir = quiet(cxx, ['-print-runtime-dir']);
    const candidates = [runtimeDir && path.join(runtimeDir, 'libclang_rt.fuzzer-x86_64.a'),
      runtimeDir && path.join(runtimeDir, 'libclang_rt.fuzzer.a'),
      quiet(cxx, ['-print-file-name=libclang_rt.fuzzer-x86_64.a'])];
    if (candidates.some((f) => f && path.isAbsolute(f) && fs.existsSync(f))) return cxx;
  }
  return null;
}

function haveOpenSslDev() {
  return fs.existsSync('/usr/include/openssl/ssl.h') &&
    quiet('sh', ['-c', 'ls /usr/lib/*/libssl.so /usr/lib/libssl.so 2>/dev/null | head -1']);
}

function ensureToolchain() {
  let cxx = findClang();
  if (cxx && haveOpenSslDev()) return cxx;
  const missing = [...(cxx ? [] : ['clang with libFuzzer']), ...(haveOpenSslDev() ? [] : ['OpenSSL headers'])];
  if (process.platform !== 'linux' || !quiet('sh', ['-c', 'command -v apt-get'])) {
    fail(`${missing.join(' and ')} missing and apt-get unavailable: install clang, its libFuzzer runtime and the OpenSSL 3 development files, then run again.`);
  }
  // Only what is not installed yet: naming an installed package to apt-get would upgrade it.
  const installed = (pkg) => /install ok installed/.test(quiet('dpkg-query', ['-W', '-f=${Status}', pkg]) ?? '');
  const packages = APT_PACKAGES.filter((pkg) => !installed(pkg));
  if (packages.length === 0) {
    fail(`${missing.join(' and ')} missing although ${APT_PACKAGES.join(', ')} are installed: check that clang++-14 is on PATH.`);
  }
  log(`installing ${packages.join(' ')} (${missing.join(', ')} missing)`);
  const sudo = process.getuid && process.getuid() === 0 ? [] : ['sudo'];
  const apt = (args) => spawnSync(sudo.length ? 'sudo' : 'apt-get', [...(sudo.length ? ['apt-get'] : []), ...args],
    { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  apt(['update']);
  apt(['install', '-y', '--no-install-recommends', ...packages]);
  cxx = findClang();
  if (!cxx || !haveOpenSslDev()) {
    fail(`could not install ${packages.join(', ')} with apt-get, so the fuzzer cannot be built.`);
  }
  return cxx;
}

// native/*.cc that reach no N-API or libuv header through their native/ includes: the engine core.
function coreSources() {
  const cache = new Map();
  const usesBinding = (file, seen = new Set()) => {
    if (cache.has(file)) return cache.get(file);
    if (seen.has(file)) return false;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    let result = BINDING_HEADERS.test(text);
    for (const m of text.matchAll(/^\s*#\s*include\s*"([^"]+)"/gm)) {
      const dep = path.join(path.dirname(file), m[1]);
      if (!result && fs.existsSync(dep)) result = usesBinding(dep, seen);
    }
    cache.set(file, result);
    return result;
  };
  return fs.readdirSync(nativeDir).filter((f) => f.endsWith('.cc')).sort()
    .map((f) => path.join(nativeDir, f)).filter((f) => !usesBinding(f));
}

// fuzz/certs/*.pem as C++ string constants (so the binary runs from anywhere).
function writeCertHeader(genDir) {
  const read = (name) => fs.readFileSync(path.join(fuzzDir, 'certs', name), 'utf8');
  const constant = (name, file) => `inline constexpr char ${name}[] = R"PEM(${read(file)})PEM";\n`;
  const text = '// Generated by scripts/fuzz.js from fuzz/certs/. Test keys only.\n#pragma once\n' +
    constant('kCaPem', 'ca.pem') + constant('kServerPem', 'server.pem') + constant('kServerKey', 'server.key') +
    constant('kClientPem', 'client.pem') + constant('kClientKey', 'client.key');
  const file = path.join(genDir, 'fuzz_certs.h');
  if (!fs.existsSync(file) || fs.readFileSync(file, 'utf8') !== text) fs.writeFileSync(file, text);
}

function newestMtime(files) {
  return Math.max(...files.map((f) => fs.statSync(f).mtimeMs));
}

function build(cxx) {
  const genDir = path.join(out, 'gen');
  const objDir = path.join(out, 'obj');
  fs.mkdirSync(genDir, { recursive: true });
  fs.mkdirSync(objDir, { recursive: true });
  writeCertHeader(genDir);
  const sources = [path.join(fuzzDir, 'engine_fuzzer.cc'), ...coreSources()];
  log(`core sources: ${sources.map((s) => path.relative(root, s)).join(' ')}`);
  const headers = fs.readdirSync(nativeDir).filter((f) => f.endsWith('.h')).map((f) => path.join(nativeDir, f));
  const common = [...FLAGS, ...DEFINES, `-I${nativeDir}`, `-I${genDir}`];
  const flagsFile = path.join(out, 'flags.txt');
  const flagsText = [cxx, ...common].join(' ');
  const flagsChanged = !fs.existsSync(flagsFile) || fs.readFileSync(flagsFile, 'utf8') !== flagsText;
  // Any header or flag change rebuilds everything: a handful of files, it is simpler than depfiles.
  const sharedInputs = newestMtime([...headers, path.join(genDir, 'fuzz_certs.h'), __filename]);
  const objects = sources.map((src) => {
    const obj = path.join(objDir, `${path.basename(src, '.cc')}.o`);
    const stale = flagsChanged || !fs.existsSync(obj) ||
      fs.statSync(obj).mtimeMs < Math.max(fs.statSync(src).mtimeMs, sharedInputs);
    if (stale) {
      log(`compiling ${path.relative(root, src)}`);
      const r = spawnSync(cxx, [...common, '-c', src, '-o', obj], { stdio: 'inherit' });
      if (r.status !== 0) fail(`compiling ${path.relative(root, src)} failed.`);
    }
    return obj;
  });
  // Objects of sources that went away must not linger in the link.
  const wanted = new Set(objects);
  for (const f of fs.readdirSync(objDir)) if (!wanted.has(path.join(objDir, f))) fs.rmSync(path.join(objDir, f));
  if (!fs.existsSync(binary) || fs.statSync(binary).mtimeMs < newestMtime(objects) || flagsChanged) {
    log(`linking ${path.relative(root, binary)}`);
    const r = spawnSync(cxx, [...FLAGS, ...objects, '-lssl', '-lcrypto', '-o', binary], { stdio: 'inherit' });
    if (r.status !== 0) fail('linking the fuzzer failed.');
  }
  fs.writeFileSync(flagsFile, flagsText);
}

// The working corpus (gitignored): the committed seeds, copied afresh, plus what earlier runs found.
function workCorpus() {
  const dir = path.join(out, 'corpus');
  fs.mkdirSync(dir, { recursive: true });
  for (const seeds of ['corpus', 'seeds']) {
    const from = path.join(fuzzDir, seeds);
    if (!fs.existsSync(from)) continue;
    for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(dir, `${seeds}-${f}`));
  }
  return dir;
}

function main() {
  const args = process.argv.slice(2);
  const buildOnly = args.includes('--build-only');
  const userArgs = args.filter((a) => a !== '--build-only');
  const cxx = ensureToolchain();
  build(cxx);
  if (buildOnly) return 0;
  const artifacts = path.join(out, 'artifacts');
  fs.mkdirSync(artifacts, { recursive: true });
  const flags = userArgs.filter((a) => a.startsWith('-'));
  const inputs = userArgs.filter((a) => !a.startsWith('-'));
  const runArgs = [...flags];
  if (!flags.some((a) => a.startsWith('-artifact_prefix='))) runArgs.push(`-artifact_prefix=${artifacts}/`);
  if (!flags.some((a) => a.startsWith('-dict='))) runArgs.push(`-dict=${path.join(fuzzDir, 'tls.dict')}`);
  if (inputs.length > 0) {
    runArgs.push(...inputs); // reproduce: run exactly these inputs
  } else {
    const limited = flags.some((a) => /^-(max_total_time|runs)=/.test(a));
    if (!limited) runArgs.push('-max_total_time=60');
    runArgs.push(workCorpus());
  }
  log(`${path.relative(root, binary)} ${runArgs.join(' ')}`);
  const r = spawnSync(binary, runArgs, {
    stdio: 'inherit',
    env: { UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1', ...process.env },
  });
  if (r.status !== 0) log(`the fuzzer exited with ${r.status ?? r.signal}; crash inputs are in ${path.relative(root, artifacts)}/`);
  return r.status ?? 1;
}

process.exit(main());
