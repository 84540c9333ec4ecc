// The package's entry points as package.json declares them (the packed tarball itself: npm run check:pack).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { run } from './helpers';

const root = path.join(__dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));

describe('package.json', () => {
  test('exports: require, import and types entries exist, and ./package.json', () => {
    const main = pkg.exports['.'];
    expect(Object.keys(main)).toEqual(['types', 'import', 'require']); // types first, as TypeScript reads them
    for (const f of [main.types, main.import, main.require, pkg.main, pkg.types])
      expect(existsSync(path.join(root, f))).toBe(true);
    expect(pkg.exports['./package.json']).toBe('./package.json');
  });

  test('import and require() give the same instance and the same names', async () => {
    const script = [
      `import * as esm from ${JSON.stringify(path.join(root, 'esm', 'index.mjs'))};`,
      "import { createRequire } from 'node:module';",
      'const cjs = createRequire(import.meta.url)(process.argv[1]);',
      "const names = Object.keys(esm).filter((k) => k !== 'default').sort();",
      'const same = names.every((k) => esm[k] === cjs[k]) && esm.default === cjs;',
      'console.log(JSON.stringify({ names, cjs: Object.keys(cjs).sort(), same }));',
    ].join('\n');
    const r = await run(process.execPath, ['--input-type=module', '-e', script, path.join(root, 'dist', 'index.js')]);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out.names).toEqual(out.cjs);
    expect(out.same).toBe(true);
  });

  test('the bin is the sample server, with a node shebang', () => {
    const bin = pkg.bin['openssl-session-cache'];
    expect(bin).toBe('dist/bin/server.js');
    expect(readFileSync(path.join(root, bin), 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  test('LICENSE, CHANGELOG and README ship; tests and benchmarks do not', () => {
    for (const f of ['LICENSE', 'CHANGELOG.md', 'README.md']) {
      expect(pkg.files).toContain(f);
      expect(existsSync(path.join(root, f))).toBe(true);
    }
    expect(readFileSync(path.join(root, 'LICENSE'), 'utf8')).toMatch(
      /^MIT License\n\nCopyright \(c\) \d{4} openssl-session-cache contributors\n/,
    );
    expect(pkg.license).toBe('MIT');
    expect(readFileSync(path.join(root, 'CHANGELOG.md'), 'utf8')).toContain(`## [${pkg.version}]`);
    for (const f of pkg.files as string[]) expect(f).not.toMatch(/^(test|bench|soak|fuzz|scripts|lib|examples)\b/);
  });
});
