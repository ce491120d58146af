// What `twice plan` / `twice run` check before anything starts: every checkpoint, tokenizer and
// dataset a spec needs, looked up where the Python worker looks, all missing ones listed at once.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadModelCatalog } from '../../activities/catalog';
import { parseSweepSpec } from '../../workflows/sweep-spec';
import { describeMissing, specAssets } from '../../workers/lib/assets';
import { pullTargets } from '../../workers/pull-command';
import { repoRoot } from '../../workers/lib/paths';

const catalog = loadModelCatalog(repoRoot);
const paperSpec = (table: string) => {
  const file = join(repoRoot, 'specs', 'paper', `${table}.yaml`);
  return parseSweepSpec(readFileSync(file, 'utf8'), file, catalog);
};
const emptyEnv = () => {
  const root = mkdtempSync(join(tmpdir(), 'twice-assets-'));
  return { root, env: { HF_HUB_CACHE: join(root, 'hub'), TWICE_MODEL_DIR: join(root, 'models'), TWICE_DATA_DIR: join(root, 'data') } };
};

describe('specAssets', () => {
  it('lists all 16 Table 1 checkpoints, their 2 tokenizers and the 6 datasets as missing on an empty machine', () => {
    const { env } = emptyEnv();
    const assets = specAssets(paperSpec('table1'), catalog, env);
    const missing = (kind: string) => assets.filter((a) => a.kind === kind && a.foundAt === null).map((a) => a.hfId);
    assert.equal(missing('model').length, 16);
    assert.deepEqual(missing('tokenizer').sort(), ['EleutherAI/gpt-neox-20b', 'gpt2']);
    assert.deepEqual(missing('dataset').sort(), [
      'hazyresearch/based-fda',
      'hazyresearch/based-squad',
      'hazyresearch/based-swde-v2',
      'hazyresearch/based_drop',
      'hazyresearch/based_nq_1024',
      'hazyresearch/based_triviaqa',
    ]);
    const lines = describeMissing(assets);
    assert.match(lines[0]!, /16 model checkpoint\(s\), 2 tokenizer\(s\), 6 dataset\(s\); nothing was started/);
    assert.ok(lines.some((l) => l.includes(`put it at ${join(env.TWICE_MODEL_DIR, 'fla-hub/gla-2.7B-100B')}`)));
  });

  it('finds weights, tokenizers and splits where the worker looks', () => {
    const { root, env } = emptyEnv();
    mkdirSync(join(env.TWICE_MODEL_DIR, 'hazyresearch', 'JRT-360M-30B'), { recursive: true });
    writeFileSync(join(env.TWICE_MODEL_DIR, 'hazyresearch', 'JRT-360M-30B', 'model.safetensors'), '');
    const snapshot = join(env.HF_HUB_CACHE, 'models--gpt2', 'snapshots', 'abc');
    mkdirSync(snapshot, { recursive: true });
    writeFileSync(join(snapshot, 'tokenizer.json'), '{}');
    const data = join(env.HF_HUB_CACHE, 'datasets--hazyresearch--based-fda', 'snapshots', 'def', 'data');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'validation-00000-of-00001.parquet'), '');
    mkdirSync(join(root, 'own-swde'));
    writeFileSync(join(root, 'own-swde', 'validation.jsonl'), '{}\n');
    const spec = parseSweepSpec(
      [
        'name: t',
        'models: [jrt-1b-50b, jrt-360m-30b]',
        'tasks:',
        '  - { name: fda, params: { contextTokens: 462 } }',
        `  - { name: swde, params: { dataDir: ${join(root, 'own-swde')} } }`,
        '  - { name: nq, params: { variant: 512 } }',
      ].join('\n'),
      't.yaml',
      catalog,
    );
    const byId = new Map(specAssets(spec, catalog, env).map((a) => [a.hfId, a]));
    assert.equal(byId.get('hazyresearch/JRT-360M-30B')!.foundAt, join(env.TWICE_MODEL_DIR, 'hazyresearch', 'JRT-360M-30B'));
    assert.equal(byId.get('hazyresearch/JRT-1B-50B')!.foundAt, null);
    assert.equal(byId.get('gpt2')!.foundAt, snapshot);
    assert.deepEqual(byId.get('gpt2')!.neededBy, ['jrt-1b-50b', 'jrt-360m-30b']);
    assert.ok(byId.get('hazyresearch/based-fda')!.foundAt);
    assert.equal(byId.get('hazyresearch/based-swde-v2')!.foundAt, join(root, 'own-swde'));
    assert.equal(byId.get('hazyresearch/based_nq_512')!.foundAt, null);
    const lines = describeMissing([...byId.values()]);
    assert.match(lines[0]!, /1 model checkpoint\(s\), 0 tokenizer\(s\), 1 dataset\(s\)/);
  });

  it('needs nothing for zoo, debug and operator models or synthetic tasks', () => {
    const { env } = emptyEnv();
    const spec = parseSweepSpec(readFileSync(join(repoRoot, 'specs', 'default.yaml'), 'utf8'), 'default.yaml', catalog);
    assert.deepEqual(specAssets(spec, catalog, env), []);
    assert.deepEqual(describeMissing([]), []);
  });
});

describe('paper specs', () => {
  it('every specs/paper spec validates against the spec schema', () => {
    for (const t of ['table1', 'table2', 'table3', 'table4', 'table5']) assert.ok(paperSpec(t).name.startsWith('paper-'));
    assert.equal(paperSpec('table1').models.length, 16);
    assert.equal(paperSpec('table1').tasks.length, 6);
  });
});

describe('pullTargets', () => {
  it('resolves a catalog model, a task or dataset id, and a spec file', () => {
    const ids = (t: string) => pullTargets(t).map((a) => `${a.kind}:${a.hfId}`).sort();
    assert.deepEqual(ids('jrt-1b-50b'), ['model:hazyresearch/JRT-1B-50B', 'tokenizer:gpt2']);
    assert.deepEqual(ids('fda'), ['dataset:hazyresearch/based-fda']);
    assert.deepEqual(ids('hazyresearch/based_nq_512'), ['dataset:hazyresearch/based_nq_512']);
    assert.equal(pullTargets(join(repoRoot, 'specs', 'paper', 'table4.yaml')).length, 6);
    assert.throws(() => pullTargets('zoo-attn-tiny'), /no download: its source is zoo/);
    assert.throws(() => pullTargets('nonsense'), /not a spec file, a catalog model/);
  });
});
