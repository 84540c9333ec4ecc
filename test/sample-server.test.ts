// The sample server (`npm start`): a working TLS server on a generated certificate whose session
// cache shows with the classic client command.
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';

import { PLATFORM, sClient, within } from './helpers';

const SERVER = path.join(__dirname, '..', 'dist', 'bin', 'server.js');

function start(args: string[]): Promise<{ child: ChildProcessWithoutNullStreams; port: number; output: () => string }> {
  const child = spawn(process.execPath, [SERVER, '--port', '0', '--host', '127.0.0.1', ...args]);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return within(
    new Promise((resolve, reject) => {
      const check = () => {
        const m = /TLS echo server on [^ ]*:(\d+) /.exec(out);
        if (m) resolve({ child, port: Number(m[1]), output: () => out });
      };
      child.stdout.on('data', check);
      child.on('exit', (code) => reject(new Error(`sample server exited with ${code}: ${out}`)));
    }),
    15000,
    'sample server to listen',
  );
}

/**
 * Ctrl-C: the server prints its stats and exits with 0. Windows has no signals (kill() ends the process
 * without running its handler): there it is only stopped, and `true` says that it did.
 */
async function stop(child: ChildProcessWithoutNullStreams): Promise<boolean> {
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGINT');
  const code = await within(exited, 10000, 'sample server to exit');
  return PLATFORM.signals ? code === 0 : true;
}

test('s_client -reconnect -no_ticket: one Session-ID six times, five Reused; a line per connection; stats on exit', async () => {
  const s = await start([]);
  try {
    const r = await sClient(s.port, ['-reconnect', '-no_ticket'], { timeoutMs: 20000 });
    const ids = r.stdout.match(/Session-ID: [0-9A-F]+/g) ?? [];
    expect(ids).toHaveLength(6);
    expect(new Set(ids).size).toBe(1);
    expect(r.stdout.match(/^Reused, /gm) ?? []).toHaveLength(5);
    expect(r.stdout.match(/^New, /gm) ?? []).toHaveLength(1);
  } finally {
    expect(await stop(s.child)).toBe(true);
  }
  const out = s.output();
  expect(out.match(/ new {5}session /g) ?? []).toHaveLength(1);
  expect(out.match(/ resumed session /g) ?? []).toHaveLength(5);
  expect(out.match(/closed cleanly \(close_notify\)/g) ?? []).toHaveLength(6);
  if (PLATFORM.signals)
    expect(out).toMatch(
      /cache: 1 sessions, 5 hits, \d+ misses, 0 timeouts, 0 evicted; server: 6 handshakes \(5 resumed\), 0 failed/,
    );
});

test('--max-version TLSv1.3: a saved TLS 1.3 session resumes statefully', async () => {
  const s = await start(['--max-version', 'TLSv1.3']);
  try {
    const file = path.join(os.tmpdir(), `osc-sample-${s.port}.pem`);
    const first = await sClient(s.port, ['-sess_out', file, '-ign_eof'], {
      input: 'hi\n',
      inputDelayMs: 700,
      timeoutMs: 3000,
    });
    expect(first.stdout).toMatch(/^New, TLSv1\.3/m);
    const again = await sClient(s.port, ['-sess_in', file], { input: 'hi\n', timeoutMs: 10000 });
    expect(again.stdout).toMatch(/^Reused, TLSv1\.3/m);
  } finally {
    expect(await stop(s.child)).toBe(true);
  }
  expect(s.output()).toMatch(/TLSv1\.3 resumed session /);
});
