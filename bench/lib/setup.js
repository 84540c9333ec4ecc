'use strict';
// Puts the machine in shape for the bench: tools (apt-get, only when missing:
// openssl, libssl-dev, gcc, valgrind, redis-server for the store section, linux-perf for perf.js),
// the C programs in bench/bin/, and the certificates in bench/out/.
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const BIN = path.join(ROOT, 'bin');
const OUT = path.join(ROOT, 'out');

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts }).toString();
}

function have(cmd) {
  try { sh('sh', ['-c', `command -v ${cmd}`]); return true; } catch { return false; }
}

function ensureTools({ needValgrind, needRedis, needPerf }, log) {
  const missing = [];
  if (!fs.existsSync('/usr/include/openssl/ssl.h')) missing.push('libssl-dev');
  if (!have('openssl')) missing.push('openssl');
  if (!have('cc')) missing.push('gcc');
  if (needValgrind && !have('valgrind')) missing.push('valgrind');
  if (needRedis && !have('redis-server')) missing.push('redis-server'); // the store section's local Redis
  if (needPerf && !have('perf')) missing.push('linux-perf'); // bench/perf.js
  if (!missing.length) return;
  log(`installing ${missing.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  sh('apt-get', ['update', '-q'], { env });
  sh('apt-get', ['install', '-y', '-q', ...missing], { env });
}

// Rebuilds a binary when its source is newer.
function build() {
  fs.mkdirSync(BIN, { recursive: true });
  for (const name of ['c_server', 'loadgen']) {
    const src = path.join(ROOT, `${name}.c`);
    const bin = path.join(BIN, name);
    if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs > fs.statSync(src).mtimeMs) continue;
    sh('cc', ['-O2', '-g', '-Wall', '-pthread', '-o', bin, src, '-lssl', '-lcrypto']);
  }
}

// Self-signed RSA-2048 and ECDSA P-256 certificates, made once per checkout.
function certs() {
  fs.mkdirSync(OUT, { recursive: true });
  const kinds = {
    rsa: ['-newkey', 'rsa:2048'],
    p256: ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  };
  const res = {};
  for (const [k, newkey] of Object.entries(kinds)) {
    const cert = path.join(OUT, `${k}.crt`);
    const key = path.join(OUT, `${k}.key`);
    if (!fs.existsSync(cert) || !fs.existsSync(key)) {
      sh('openssl', ['req', '-x509', ...newkey, '-nodes', '-keyout', key, '-out', cert,
        '-subj', '/CN=localhost', '-days', '365']);
    }
    res[k] = { cert, key };
  }
  return res;
}

module.exports = { ensureTools, build, certs, ROOT, BIN, OUT };
