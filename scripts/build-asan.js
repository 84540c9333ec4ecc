#!/usr/bin/env node
// Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/, then runs a
// command against it: `npm run build:asan -- [command...]` (default: the jest suite).
// node itself is not instrumented, so the ASan runtime is preloaded; leak checking is valgrind's job
// (scripts/valgrind-check.sh), since node does not free everything at exit.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const flags = '-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g -O1';
execFileSync(
  process.execPath,
  [require.resolve('cmake-js/bin/cmake-js'), 'rebuild', '-O', 'build-asan', `--CDCMAKE_CXX_FLAGS=${flags}`,
    `--CDCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined`],
  { cwd: root, stdio: 'inherit' },
);
const runtime = execFileSync('gcc', ['-print-file-name=libasan.so']).toString().trim();
const ubsan = execFileSync('gcc', ['-print-file-name=libubsan.so']).toString().trim();
const command = process.argv.slice(2);
const [cmd, ...args] = command.length > 0 ? command : ['npx', 'jest', '--runInBand'];
const r = spawnSync(cmd, args, {
  cwd: root,
  stdio: 'inherit',
  env: {
    ...process.env,
    LD_PRELOAD: `${runtime} ${ubsan}`,
    ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1',
    UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
    OSC_ADDON_PATH: path.join(root, 'build-asan/Release/openssl_session_cache.node'),
  },
});
process.exit(r.status ?? 1);
