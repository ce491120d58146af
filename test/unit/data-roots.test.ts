// Issue 11 item 11: data paths a spec names are refused outside the roots the configuration
// allows (TWICE_DATA_ROOTS, else TWICE_DATA_DIR, the HF hub cache, home and the repository),
// before anything starts, exit 2 naming the field. Before, an absolute bigramCounts and any
// dataDir were passed to the worker as they were.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { allowedDataRoots } from '../../workers/lib/data-roots';
import { repoRoot } from '../../workers/lib/paths';
import { readSpec } from '../../workers/lib/sweeps';
import { SpecError } from '../../workflows/sweep-spec';

const dir = mkdtempSync(join(tmpdir(), 'twice-roots-'));
const spec = (name: string, extra: string) => {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, `name: ${name}\nmodels: [mamba-130m]\n${extra}\n`);
  return file;
};
const problems = (file: string) => {
  try {
    readSpec(file);
  } catch (err) {
    if (err instanceof SpecError) return err.problems;
    throw err;
  }
  return [];
};

describe('data paths in a spec', () => {
  const saved = process.env.TWICE_DATA_ROOTS;
  after(() => {
    if (saved === undefined) delete process.env.TWICE_DATA_ROOTS;
    else process.env.TWICE_DATA_ROOTS = saved;
  });

  it('are refused outside the allowed roots, each named with its field', () => {
    process.env.TWICE_DATA_ROOTS = join(dir, 'data');
    const file = spec('outside', 'tasks: [{ name: squad, params: { dataDir: /etc } }]\nslices: { bigramCounts: /etc/passwd }');
    const found = problems(file);
    assert.equal(found.length, 2, found.join('\n'));
    assert.match(found[0]!, /^tasks\[0\]\.params\.dataDir: "\/etc" is outside the allowed data roots \(.*twice-roots-.*\/data\)/);
    assert.match(found[1]!, /^slices\.bigramCounts: "\/etc\/passwd" is outside/);
  });

  it('are refused when a link inside a root leads outside it', () => {
    process.env.TWICE_DATA_ROOTS = join(dir, 'data');
    mkdirSync(join(dir, 'data'), { recursive: true });
    symlinkSync('/etc', join(dir, 'data', 'escape'));
    assert.equal(problems(spec('link', 'tasks: [{ name: squad, params: { dataDir: data/escape } }]')).length, 1);
  });

  it('are accepted under a root, relative ones read from the shell directory', () => {
    process.env.TWICE_DATA_ROOTS = join(dir, 'data');
    const file = spec('inside', `tasks: [{ name: squad, params: { dataDir: ${join(dir, 'data', 'squad')} } }]\nslices: { bigramCounts: b.npz }`);
    assert.deepEqual(problems(file), []);
  });

  it('default to TWICE_DATA_DIR, the hub cache, home and the repository', () => {
    const roots = allowedDataRoots({ TWICE_DATA_DIR: join(dir, 'data'), HF_HUB_CACHE: join(dir, 'hub') });
    assert.deepEqual(roots.slice(0, 2), [join(dir, 'data'), join(dir, 'hub')]);
    assert.ok(roots.some((r) => homedir().startsWith(r)) && roots.some((r) => repoRoot.startsWith(r)), roots.join(', '));
  });
});
