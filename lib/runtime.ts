// Which runtimes the addon can run on, decided before it is loaded: elsewhere loading it would fail with a
// missing-symbol error from the dynamic linker (it binds the OpenSSL 3 inside the node process).

/** The oldest Node.js the package supports: `engines.node` in package.json (a test keeps the two equal). */
export const MIN_NODE: readonly [number, number] = [20, 17];

/** The code of the error thrown at load time on a runtime the addon cannot run on. */
export const UNSUPPORTED_RUNTIME = 'ERR_OSC_UNSUPPORTED_RUNTIME';

/** The part of `process.versions` the decision reads. */
export type RuntimeVersions = Partial<Record<string, string>>;

/**
 * Why the addon cannot run on a runtime with these `process.versions`, in one sentence, or null when it
 * can: it needs Node.js (not Electron, Bun or Deno, whose TLS is not Node's OpenSSL) at least
 * {@link MIN_NODE}, built with its OpenSSL 3.
 */
export function unsupportedRuntime(versions: RuntimeVersions): string | null {
  const name = 'openssl-session-cache';
  const min = `${MIN_NODE[0]}.${MIN_NODE[1]}`;
  if (versions.electron) {
    return `${name} runs on the OpenSSL inside Node.js, and Electron ${versions.electron} uses BoringSSL instead: use it from a Node.js >= ${min} process, not from Electron.`;
  }
  if (versions.bun) {
    return `${name} runs on the OpenSSL inside Node.js, and Bun ${versions.bun} uses BoringSSL instead: run it on Node.js >= ${min}.`;
  }
  if (versions.deno) {
    return `${name} runs on the OpenSSL inside Node.js, and Deno ${versions.deno} has no OpenSSL to run on: run it on Node.js >= ${min}.`;
  }
  const openssl = versions.openssl;
  if (!openssl) {
    const node = versions.node ? `Node.js ${versions.node}` : 'runtime';
    return `${name} runs on the OpenSSL inside Node.js, and this ${node} was built without OpenSSL: use a Node.js >= ${min} built with it (every official build is).`;
  }
  if (/boringssl/i.test(openssl)) {
    return `${name} runs on the OpenSSL inside Node.js, and this runtime has BoringSSL (${openssl}) instead: run it on Node.js >= ${min}.`;
  }
  const node = /^(\d+)\.(\d+)/.exec(versions.node ?? '');
  if (!node || +node[1] < MIN_NODE[0] || (+node[1] === MIN_NODE[0] && +node[2] < MIN_NODE[1])) {
    return `${name} needs Node.js >= ${min}, and this is ${versions.node ? `Node.js ${versions.node}` : 'not Node.js'}.`;
  }
  const major = parseInt(openssl, 10);
  if (!(major >= 3)) {
    return `${name} needs the OpenSSL 3 of an official Node.js build, and this Node.js ${versions.node} runs on OpenSSL ${openssl}.`;
  }
  return null;
}

/** Throws an Error with code {@link UNSUPPORTED_RUNTIME} and the one-sentence reason on an unsupported runtime. */
export function assertSupportedRuntime(versions: RuntimeVersions = process.versions): void {
  const reason = unsupportedRuntime(versions);
  if (reason !== null) throw Object.assign(new Error(reason), { code: UNSUPPORTED_RUNTIME });
}
