// What `twice plan` / `twice run` check before anything starts: every checkpoint, tokenizer and
// dataset a spec needs, looked up where the Python worker looks, all missing ones listed at once.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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

  it('lists the 4 Figure 3 checkpoints, their tokenizer, the corpus and the bigram table as missing, with where to put them', () => {
    const { env } = emptyEnv();
    const assets = specAssets(paperSpec('figure3'), catalog, env);
    const missing = (kind: string) =>
      assets
        .filter((a) => a.kind === kind && a.foundAt === null)
        .map((a) => a.hfId)
        .sort();
    assert.deepEqual(missing('model'), [
      'hazyresearch/JRT-360M-30B',
      'hazyresearch/attn-360M-30B',
      'hazyresearch/based-360M-30B',
      'hazyresearch/mamba-360M-30B',
    ]);
    assert.deepEqual(missing('tokenizer'), ['gpt2']);
    assert.deepEqual(missing('dataset'), []);
    assert.deepEqual(missing('file'), ['pile/test-2048.jsonl', 'pile/train-bigrams-gpt2.npz']);
    assert.equal(assets.length, 7, 'nothing else is needed');
    const lines = describeMissing(assets);
    assert.match(lines[0]!, /4 model checkpoint\(s\), 1 tokenizer\(s\), 0 dataset\(s\), 2 data file\(s\); nothing was started/);
    assert.ok(lines.includes('  file pile/test-2048.jsonl (for perplexity corpus)'), lines.join('\n'));
    assert.ok(lines.some((l) => l.includes(`put it at ${join(env.TWICE_DATA_DIR, 'pile', 'train-bigrams-gpt2.npz')}`)));
    assert.ok(
      lines.some((l) => l.includes('bigrams build')),
      'says how to make the bigram table',
    );

    // with the files where the worker reads them, only the checkpoints and tokenizer are left
    mkdirSync(join(env.TWICE_DATA_DIR, 'pile'), { recursive: true });
    writeFileSync(join(env.TWICE_DATA_DIR, 'pile', 'test-2048.jsonl'), '{"text": "x"}\n');
    writeFileSync(join(env.TWICE_DATA_DIR, 'pile', 'train-bigrams-gpt2.npz'), '');
    const after = specAssets(paperSpec('figure3'), catalog, env).filter((a) => a.foundAt === null);
    assert.deepEqual(after.map((a) => a.kind).sort(), ['model', 'model', 'model', 'model', 'tokenizer']);
  });

  it('`twice plan specs/paper/figure3.yaml` on an empty machine lists what is missing, exits 1 and starts nothing', () => {
    const { root, env } = emptyEnv();
    const state = join(root, 'state');
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'workers', 'twice.ts'), 'plan', join(repoRoot, 'specs', 'paper', 'figure3.yaml')],
      {
        cwd: repoRoot,
        encoding: 'utf8',
        env: { ...process.env, ...env, TWICE_TOKENIZER_DIR: '', TWICE_STATE_DIR: state, DATABASE_URL: '', TEMPORAL_ADDRESS: '' },
      },
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /missing on this machine: 4 model checkpoint\(s\), 1 tokenizer\(s\), 0 dataset\(s\), 2 data file\(s\); nothing was started/);
    for (const id of ['attn-360M-30B', 'mamba-360M-30B', 'based-360M-30B', 'JRT-360M-30B'])
      assert.match(r.stdout, new RegExp(`model hazyresearch/${id} \\(for `));
    assert.match(r.stdout, /file pile\/train-bigrams-gpt2\.npz \(for slices\.bigramCounts\)/);
    assert.ok(!existsSync(state), 'no stack was started (its state folder was never made)');
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
    for (const t of ['table1', 'table2', 'table3', 'table4', 'table5', 'figure3']) assert.ok(paperSpec(t).name.startsWith('paper-'));
    assert.equal(paperSpec('table1').models.length, 16);
    assert.equal(paperSpec('table1').tasks.length, 6);
  });
});

describe('pullTargets', () => {
  it('resolves a catalog model, a task or dataset id, and a spec file', () => {
    const ids = (t: string) =>
      pullTargets(t)
        .map((a) => `${a.kind}:${a.hfId}`)
        .sort();
    assert.deepEqual(ids('jrt-1b-50b'), ['model:hazyresearch/JRT-1B-50B', 'tokenizer:gpt2']);
    assert.deepEqual(ids('fda'), ['dataset:hazyresearch/based-fda']);
    assert.deepEqual(ids('hazyresearch/based_nq_512'), ['dataset:hazyresearch/based_nq_512']);
    assert.equal(pullTargets(join(repoRoot, 'specs', 'paper', 'table4.yaml')).length, 6);
    // Figure 3's corpus and bigram table are listed, for pull to say they come from no hub
    const fig3 = pullTargets(join(repoRoot, 'specs', 'paper', 'figure3.yaml'));
    assert.deepEqual(
      fig3.filter((a) => a.kind === 'file').map((a) => a.hfId),
      ['pile/test-2048.jsonl', 'pile/train-bigrams-gpt2.npz'],
    );
    assert.throws(() => pullTargets('zoo-attn-tiny'), /no download: its source is zoo/);
    assert.throws(() => pullTargets('nonsense'), /not a spec file, a catalog model/);
  });
});
