// Issue 11 item 11: paths a user types resolve against the shell's directory (npm run moves the
// process to the repository root and keeps the caller's directory in INIT_CWD), not the
// repository's or the worker's.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { callerPath, repoRoot } from '../../workers/lib/paths';
import { readSpec } from '../../workers/lib/sweeps';

describe('paths the user types', () => {
  const saved = process.env.INIT_CWD;
  const savedRoots = process.env.TWICE_DATA_ROOTS;
  const shellDir = mkdtempSync(join(tmpdir(), 'twice-caller-'));
  after(() => {
    if (saved === undefined) delete process.env.INIT_CWD;
    else process.env.INIT_CWD = saved;
    if (savedRoots === undefined) delete process.env.TWICE_DATA_ROOTS;
    else process.env.TWICE_DATA_ROOTS = savedRoots;
  });

  it('resolve against the caller directory, not the repository root', () => {
    process.env.INIT_CWD = shellDir;
    assert.notEqual(process.cwd(), shellDir);
    assert.equal(callerPath('out/report'), join(shellDir, 'out', 'report'));
    assert.equal(callerPath('/abs/report'), '/abs/report');
  });

  it('read a spec, and its relative dataDir, from the caller directory', () => {
    process.env.INIT_CWD = shellDir;
    process.env.TWICE_DATA_ROOTS = shellDir; // a temporary folder is no default data root
    mkdirSync(join(shellDir, 'specs'), { recursive: true });
    writeFileSync(join(shellDir, 'specs', 'mine.yaml'), 'name: mine\nmodels: [mamba-130m]\ntasks: [{ name: squad, params: { dataDir: data/squad } }]\n');
    const { spec, file } = readSpec('specs/mine.yaml');
    assert.equal(spec.tasks[0]!.params.dataDir, join(shellDir, 'data', 'squad'));
    // recorded relative to the repository, pointing at the caller's file
    assert.equal(resolve(repoRoot, file), join(shellDir, 'specs', 'mine.yaml'));
  });
});
