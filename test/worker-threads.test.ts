// Worker threads that load the addon one after another (issue: the second worker's first TLS 1.3
// connection called into the unloaded copy of the first, through a process-wide OpenSSL callback).
// Each case runs in a child process, so that "the main thread never loads the addon" is real, and so a
// segfault fails one test instead of the run.
import path from 'node:path';

import { run } from './helpers';

const SCRIPT = path.join(__dirname, 'fixtures', 'worker-rounds.js');

const cases: Array<[string, boolean, boolean]> = [];
for (const version of ['TLSv1.3', 'TLSv1.2']) {
  for (const loadMain of [false, true]) {
    for (const terminate of [false, true]) cases.push([version, loadMain, terminate]);
  }
}

test.each(cases)(
  '%s, main thread loads the addon: %s, worker terminated while busy: %s — 25 workers in turn, each resumes a session',
  async (version, loadMain, terminate) => {
    const rounds = 25;
    const r = await run(process.execPath, [SCRIPT, JSON.stringify({ rounds, version, loadMain, terminate })], {
      timeoutMs: 60000,
    });
    expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    expect(r.stdout.trim()).toBe(`ok ${rounds}`);
  },
);
