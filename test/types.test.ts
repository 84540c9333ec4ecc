// The published types, as a TypeScript user gets them: the package is built from lib/ and laid out as
// `npm pack` packs it (its `files`) in a consumer project in a temporary directory, which compiles
// test/fixtures/types/*.ts under `strict`: with `moduleResolution` node16 (as CommonJS .cts and ES module
// .mts) and bundler, against the @types/node versions the package supports (the installed one,
// and the others this project installs under aliases). No network: TypeScript and @types/node come from
// this checkout's node_modules. Wrong listeners, unknown events, internals and a nullable `session` must
// be type errors (negative.ts, with `@ts-expect-error` lines; checked again without the directives).
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { run } from './helpers';

const root = path.join(__dirname, '..');
const fixtures = path.join(__dirname, 'fixtures', 'types');
const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

/**
 * The @types/node versions compiled against: the installed one, and the others this project installs
 * under aliases: the declared minimum (`peerDependencies`) and the newest of each later major.
 */
const TYPES = [
  { alias: '@types/node', libCheck: true },
  // Older than TypeScript 5.7's generic typed arrays: its own declarations fail a lib check under this
  // TypeScript (whatever the package), so only the consumer's code and ours are checked against it.
  { alias: 'types-node-20.0', libCheck: false },
  { alias: 'types-node-22', libCheck: true },
  { alias: 'types-node-24', libCheck: true },
  { alias: 'types-node-25', libCheck: true },
];
interface TypesVersion {
  name: string;
  dir: string;
  version: string;
  libCheck: boolean;
}
const VERSIONS: TypesVersion[] = TYPES.map(({ alias, libCheck }) => {
  const dir = path.join(root, 'node_modules', ...alias.split('/'));
  const version = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version as string;
  return { name: `@types/node@${version}`, dir, version, libCheck };
});
const INSTALLED = VERSIONS[0];

const CONFIGS = {
  node16: { module: 'node16', moduleResolution: 'node16', files: ['consumer.cts', 'consumer.mts', 'negative.mts'] },
  bundler: { module: 'esnext', moduleResolution: 'bundler', files: ['consumer.ts', 'negative.ts'] },
} as const;
// A compile takes seconds (and more on a loaded machine, or under the sanitizer build's preload).
const COMPILE_MS = 150_000;
type ConfigName = keyof typeof CONFIGS;

let work: string;
let consumer: string;

/** A directory link that needs no privilege on Windows either. */
function link(target: string, at: string): void {
  mkdirSync(path.dirname(at), { recursive: true });
  symlinkSync(target, at, 'junction');
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'osc-types-'));
  // The package: lib/ built with the project's tsconfig (as `npm run build:ts` and `prepare` do) next to
  // package.json and esm/, then `npm pack --dry-run` says which of its files the tarball holds.
  const stage = path.join(work, 'stage');
  mkdirSync(stage);
  cpSync(path.join(root, 'package.json'), path.join(stage, 'package.json'));
  cpSync(path.join(root, 'esm'), path.join(stage, 'esm'), { recursive: true });
  for (const f of ['README.md', 'LICENSE', 'CHANGELOG.md']) cpSync(path.join(root, f), path.join(stage, f));
  const build = await run(
    process.execPath,
    [tsc, '-p', path.join(root, 'tsconfig.json'), '--outDir', path.join(stage, 'dist')],
    {
      timeoutMs: 120_000,
    },
  );
  expect(build.stdout + build.stderr).toBe('');
  const pack = ['npm', 'pack', '--dry-run', '--json', '--ignore-scripts'];
  // npm is a .cmd on Windows, which only a shell runs.
  const [cmd, ...args] = process.platform === 'win32' ? ['cmd', '/c', ...pack] : pack;
  const packed = await run(cmd, args, { cwd: stage, timeoutMs: 60_000 });
  expect(packed.code).toBe(0);
  const files = (JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')))[0].files as Array<{ path: string }>).map(
    (f) => f.path,
  );
  expect(files).toEqual(expect.arrayContaining(['package.json', 'esm/index.mjs', 'dist/index.js', 'dist/index.d.ts']));

  consumer = path.join(work, 'consumer');
  const installed = path.join(consumer, 'node_modules', 'openssl-session-cache');
  for (const f of files) {
    mkdirSync(path.dirname(path.join(installed, f)), { recursive: true });
    cpSync(path.join(stage, f), path.join(installed, f));
  }
  link(path.join(root, 'node_modules', 'typescript'), path.join(consumer, 'node_modules', 'typescript'));
  // Each @types/node version in a type root of its own (the consumer has no node_modules/@types).
  for (const v of VERSIONS) link(v.dir, path.join(work, 'types', v.version, 'node'));
  writeFileSync(
    path.join(consumer, 'package.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }),
  );
  const consumerTs = readFileSync(path.join(fixtures, 'consumer.ts'), 'utf8');
  const negativeTs = readFileSync(path.join(fixtures, 'negative.ts'), 'utf8');
  for (const ext of ['ts', 'cts', 'mts']) {
    writeFileSync(path.join(consumer, `consumer.${ext}`), consumerTs);
    writeFileSync(path.join(consumer, `negative.${ext}`), negativeTs);
  }
  // The negative file without its directives: each of those lines must then be an error of its own.
  writeFileSync(path.join(consumer, 'bare.mts'), negativeTs.replace(/\/\/ @ts-expect-error (TS\d+)/g, '// expect $1'));
}, 180_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Diagnostic {
  file: string;
  line: number;
  code: string;
  text: string;
}

/** Compiles `files` of the consumer under `strict` with one module setting and one @types/node. */
async function compile(
  config: ConfigName,
  types: TypesVersion,
  files: readonly string[] = CONFIGS[config].files,
): Promise<{ diagnostics: Diagnostic[]; output: string }> {
  const { module, moduleResolution } = CONFIGS[config];
  const name = `tsconfig.${config}.${types.version}.json`;
  const tsconfig = {
    compilerOptions: {
      strict: true,
      noEmit: true,
      target: 'es2022',
      lib: ['es2022'],
      module,
      moduleResolution,
      types: ['node'],
      typeRoots: [path.join(work, 'types', types.version)],
      // Our declarations are checked too (skipLibCheck would hide a broken .d.ts as `any`).
      skipLibCheck: !types.libCheck,
      noUnusedLocals: true,
      esModuleInterop: true,
    },
    files,
  };
  writeFileSync(path.join(consumer, name), JSON.stringify(tsconfig, null, 2));
  const r = await run(process.execPath, [tsc, '-p', name, '--pretty', 'false'], { cwd: consumer, timeoutMs: 120_000 });
  const output = r.stdout + r.stderr;
  const diagnostics = [...output.matchAll(/^(.+?)\((\d+),\d+\): error (TS\d+): (.*)$/gm)].map((m) => ({
    file: m[1],
    line: Number(m[2]),
    code: m[3],
    text: m[4],
  }));
  expect(diagnostics.length > 0 || r.code === 0).toBe(true); // any failure is a parsed diagnostic
  return { diagnostics, output };
}

describe('the packed types compile in a strict consumer project', () => {
  // One program for the node16 run: the consumer as CommonJS and as an ES module, negative.mts, and
  // bare.mts (negative.ts without its directives), whose every error must be one the directives named.
  test(
    `moduleResolution node16, ${INSTALLED.name}: no error but each marked line of negative.ts, with its code`,
    async () => {
      const source = readFileSync(path.join(consumer, 'bare.mts'), 'utf8').split('\n');
      const expected = new Map<number, string>();
      source.forEach((line, i) => {
        const m = /^\/\/ expect (TS\d+)$/.exec(line.trim());
        if (m) expected.set(i + 2, m[1]); // the line after the directive, 1-based
      });
      expect(expected.size).toBeGreaterThanOrEqual(30);
      const { diagnostics } = await compile('node16', INSTALLED, [...CONFIGS.node16.files, 'bare.mts']);
      const show = (d: Diagnostic) => `${d.file}(${d.line}): ${d.code} ${d.text}`;
      expect(diagnostics.filter((d) => d.file !== 'bare.mts').map(show)).toEqual([]);
      // Every line that fails, with its codes: exactly the marked lines, each with its code.
      const failing = new Map<number, Set<string>>();
      for (const d of diagnostics) failing.set(d.line, (failing.get(d.line) ?? new Set()).add(d.code));
      const row = (line: number, codes: Iterable<string>) =>
        `${line}: ${[...codes].join(',')} ${source[line - 1].trim()}`;
      expect([...failing].map(([line, codes]) => row(line, codes))).toEqual(
        [...expected].map(([line, code]) => row(line, [code])),
      );
    },
    COMPILE_MS,
  );

  test(
    `moduleResolution bundler, ${INSTALLED.name}`,
    async () => {
      const { output } = await compile('bundler', INSTALLED);
      expect(output).toBe('');
    },
    COMPILE_MS,
  );

  test.each(VERSIONS.slice(1).map((v) => [v.name, v] as const))(
    'moduleResolution node16, %s',
    async (_name, v) => {
      const { output } = await compile('node16', v);
      expect(output).toBe('');
    },
    COMPILE_MS,
  );

  test('the declared @types/node range starts at the oldest version compiled against', () => {
    expect(pkg.peerDependencies['@types/node']).toBe(`>=${VERSIONS[1].version}`);
    expect(pkg.peerDependenciesMeta['@types/node']).toEqual({ optional: true });
    expect(pkg.devDependencies[TYPES[1].alias]).toBe(`npm:@types/node@${VERSIONS[1].version}`);
  });

  test('the declarations hold no internals', () => {
    const dist = path.join(consumer, 'node_modules', 'openssl-session-cache', 'dist');
    expect(existsSync(path.join(dist, 'index.d.ts'))).toBe(true);
    const connection = readFileSync(path.join(dist, 'connection.d.ts'), 'utf8');
    const context = readFileSync(path.join(dist, 'context.d.ts'), 'utf8');
    for (const member of ['attach', '_onSecure', '_onData', '_onEnd', '_onClose', 'toSessionDetails', 'Transport']) {
      expect(connection).not.toMatch(new RegExp(`\\b${member}\\b`));
    }
    expect(context).not.toMatch(/^\s*(readonly )?(native|tier)\b/m);
    expect(readFileSync(path.join(dist, 'index.d.ts'), 'utf8')).not.toMatch(/@internal/);
  });
});
