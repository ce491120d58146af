// A Hugging Face checkpoint named by a branch is pinned to the commit the branch points to when a
// sweep resolves its models: downloaded with `twice pull`'s Python side (huggingface_hub, real
// HTTP) from the local fake hub that inference/tests/test_pull.py serves, then read back from the
// cache offline. The commit is in the model revision and so in every cell key: an unchanged
// branch keeps the keys (cells reused), a moved one changes them (cells re-run).
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { createCatalogActivities, loadModelCatalog } from '../../activities/catalog';
import { expandCells, parseSweepSpec, type ResolvedSweep } from '../../workflows/sweep-spec';
import { readToolchain, repoRoot } from '../../workers/lib/paths';

const INFERENCE = join(repoRoot, 'inference');
const COMMIT_A = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const COMMIT_B = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';

describe('Hugging Face revisions pinned to commits', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'twice-hf-rev-'));
  const cache = join(dir, 'hub');
  const env = { ...process.env, HF_HUB_CACHE: cache, HF_HUB_DISABLE_XET: '1', TWICE_MODEL_DIR: '' };
  let hub: ChildProcessWithoutNullStreams | null = null;
  after(() => {
    hub?.stdin.end();
    rmSync(dir, { recursive: true, force: true });
  });

  /** the fake hub with `main` at `commit`; its port */
  async function serveHub(commit: string) {
    hub?.stdin.end();
    hub = spawn(readToolchain().python, [join(INFERENCE, 'tests', 'fake_hub.py'), '--commit', commit], { cwd: INFERENCE });
    const [line] = await createInterface({ input: hub.stdout })
      [Symbol.asyncIterator]()
      .next()
      .then((r) => [r.value as string]);
    return Number(line);
  }
  function pull(port: number) {
    const r = spawnSync(readToolchain().python, ['-m', 'twice_inference.pull', '--model', 'tiny-org/tiny-model'], {
      cwd: INFERENCE,
      env: { ...env, PYTHONPATH: INFERENCE, HF_ENDPOINT: `http://127.0.0.1:${port}` },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    return /pulled model tiny-org\/tiny-model @ ([0-9a-f]{40})/.exec(r.stdout)?.[1];
  }
  /** a repository root whose catalog holds one checkpoint of the fake hub, at `revision` if given */
  function root(revision?: string) {
    const r = mkdtempSync(join(dir, 'root-'));
    mkdirSync(join(r, 'inference', 'catalog'), { recursive: true });
    const entry = { name: 'tiny-hf', family: 'transformer', source: { kind: 'hf', hfId: 'tiny-org/tiny-model' }, dtype: 'float32', revision };
    writeFileSync(join(r, 'inference', 'catalog', 'models.json'), JSON.stringify({ models: [entry] }));
    return r;
  }
  async function resolve(r: string, withEnv: NodeJS.ProcessEnv = env) {
    const [model] = await createCatalogActivities(r, withEnv).resolveModels({ names: ['tiny-hf'], dtype: null });
    const spec = parseSweepSpec(
      'name: hf\nmodels: [tiny-hf]\ntasks: [{ name: mqar, params: { numExamples: 4 } }]\nstrategies: [default, jrt_prompt]\n',
      'hf.yaml',
      loadModelCatalog(r, withEnv),
    );
    const resolved: ResolvedSweep = {
      spec,
      specDigest: '',
      models: [model!],
      tasks: spec.tasks.map((t) => ({ name: t.name, version: 1, params: t.params, numExamples: 4, dataDigest: 'd' })),
    };
    return { revision: model!.revision, keys: expandCells(resolved).map((c) => c.key) };
  }

  it('resolves main to the commit twice pull got; the same commit keeps the keys, a moved branch changes them', async () => {
    const r = root();
    const unpulled = await resolve(r);
    assert.equal(unpulled.revision, 'hf:tiny-org/tiny-model@main', 'nothing pulled: the ref stays, and plan lists it missing');

    assert.equal(pull(await serveHub(COMMIT_A)), COMMIT_A);
    const first = await resolve(r);
    assert.equal(first.revision, `hf:tiny-org/tiny-model@${COMMIT_A}`);
    assert.equal(first.keys.length, 2);
    assert.notDeepEqual(first.keys, unpulled.keys);

    // pulled again, branch unchanged: the same keys, so every cell is reused
    assert.equal(pull(await serveHub(COMMIT_A)), COMMIT_A);
    assert.deepEqual(await resolve(r), first);

    // the branch moved upstream: the next pull brings the new commit, and every cell re-runs
    assert.equal(pull(await serveHub(COMMIT_B)), COMMIT_B);
    const moved = await resolve(r);
    assert.equal(moved.revision, `hf:tiny-org/tiny-model@${COMMIT_B}`);
    for (const key of moved.keys) assert.ok(!first.keys.includes(key));

    // a commit pinned in the catalog stays that commit, wherever main points
    assert.equal((await resolve(root(COMMIT_A))).revision, `hf:tiny-org/tiny-model@${COMMIT_A}`);
  });

  it('keeps the ref of a checkpoint read from a plain folder (TWICE_MODEL_DIR), which has no commits', async () => {
    const models = join(dir, 'models');
    mkdirSync(join(models, 'tiny-org', 'tiny-model'), { recursive: true });
    const { revision } = await resolve(root(), { ...env, TWICE_MODEL_DIR: models });
    assert.equal(revision, 'hf:tiny-org/tiny-model@main');
  });

  it('refuses a cache ref that does not hold a commit', async () => {
    writeFileSync(join(cache, 'models--tiny-org--tiny-model', 'refs', 'main'), 'not a commit\n');
    await assert.rejects(resolve(root()), /refs\/main of tiny-org\/tiny-model holds "not a commit", not a commit/);
  });
});
