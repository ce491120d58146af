// `npm test`: the TypeScript suites (node's test runner) and the Python suite (pytest, in the
// environment scripts/bootstrap.mjs built), one after the other, with one closing summary line.
// Pass file paths or `--ts` / `--py` to run a part.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { readToolchain, repoRoot } from '../workers/lib/paths';

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = join(dir, d.name);
    if (d.isDirectory()) return testFiles(p);
    return d.name.endsWith('.test.ts') ? [relative(repoRoot, p)] : [];
  });
}

function count(output: string, pattern: RegExp): number {
  const m = output.match(pattern);
  return m ? Number(m[1]) : 0;
}

const args = process.argv.slice(2);
const only = args.filter((a) => !a.startsWith('--'));
const runTs = !args.includes('--py');
const runPy = !args.includes('--ts') && only.length === 0;
let passed = 0;
let failed = 0;
let status = 0;
// node's own list of failing TypeScript tests with their assertions, said again at the very end:
// a CI log is often read from its tail, where the Python suite's output would have buried it
let failingTs = '';

if (runTs && only.length === 0) {
  // static checks first: a type error, a boundary violation or an unformatted file fails fast
  const checks = [
    ['typecheck', 'tsc', ['--noEmit']],
    ['lint', 'eslint', ['.']],
    ['format', 'prettier', ['--check', '.']],
  ] as const;
  for (const [what, cmd, cmdArgs] of checks) {
    const r = spawnSync(join(repoRoot, 'node_modules', '.bin', cmd), cmdArgs, {
      cwd: repoRoot,
      stdio: 'inherit',
    });
    if (r.status !== 0) {
      console.error(`${what} failed`);
      status = 1;
    }
  }
}

if (runTs) {
  const files = only.length ? only : testFiles(join(repoRoot, 'test')).sort();
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  process.stdout.write(r.stdout);
  passed += count(r.stdout, /ℹ pass (\d+)/);
  failed += count(r.stdout, /ℹ fail (\d+)/);
  if (r.status !== 0) status = 1;
  const at = r.stdout.indexOf('✖ failing tests:');
  if (at >= 0) failingTs = r.stdout.slice(at).trimEnd();
  // a file whose process died before reporting any test shows up as one passing entry named
  // after the file; a suite that never ran must not count as green
  const silent = [...r.stdout.matchAll(/^✔ (\/\S+\.test\.ts) \(/gm)].map((m) => m[1]);
  for (const file of silent) console.error(`✖ ${relative(repoRoot, file!)} ran no test (its process exited early)`);
  failed += silent.length;
  if (silent.length) status = 1;
}

if (runPy) {
  const { python } = readToolchain();
  // ruff, then the import layers and cycles (import-linter), then types over the seams (mypy):
  // each configured in inference/pyproject.toml
  const checks: Array<[string, string[]]> = [
    ['ruff check', ['-m', 'ruff', 'check', '.']],
    ['ruff format', ['-m', 'ruff', 'format', '--check', '.']],
    // import-linter has no `python -m` entry point; its console script would be the same call
    ['lint-imports', ['-c', 'import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())', '--no-cache']],
    ['mypy', ['-m', 'mypy']],
  ];
  for (const [what, pyArgs] of checks) {
    const lint = spawnSync(python, pyArgs, {
      cwd: join(repoRoot, 'inference'),
      stdio: 'inherit',
      env: { ...process.env, PYTHONPATH: join(repoRoot, 'inference') },
    });
    if (lint.status !== 0) {
      console.error(`${what} failed`);
      status = 1;
    }
  }
  const r = spawnSync(python, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'tests'], {
    cwd: join(repoRoot, 'inference'),
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: join(repoRoot, 'inference') },
    maxBuffer: 1 << 28,
  });
  process.stdout.write(r.stdout);
  passed += count(r.stdout, /(\d+) passed/);
  failed += count(r.stdout, /(\d+) failed/) + count(r.stdout, /(\d+) errors?/);
  if (r.status !== 0) status = 1;
}

if (failingTs && runPy) console.log(`\n${failingTs}`);
console.log(`\ntotal: ${passed} passed, ${failed} failed`);
process.exit(status);
