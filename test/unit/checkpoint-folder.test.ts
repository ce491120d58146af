// A spec's checkpoint folder on the orchestrator's side: the content digest (the same golden value
// as inference/tests/test_checkpoint_folder.py, so both languages hash one manifest), the cache
// that spares re-reading unchanged files but never trusts times to say "changed", the rule for a
// folder still being written, and the spec's `checkpoints` checks.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createCatalogActivities, loadModelCatalog } from '../../activities/catalog';
import { FolderUnstable, digestFolder, folderProblem } from '../../activities/checkpoint-folder';
import { describeMissing, specAssets } from '../../workers/lib/assets';
import { checkDataPaths } from '../../workers/lib/data-roots';
import { repoRoot } from '../../workers/lib/paths';
import { parseSweepSpec } from '../../workflows/sweep-spec';

const GOLDEN = '79d8173d1e0fcf2ba36e2bf26e5c014cc00bb6ccaebf866de625ca72298ca14f';
const LONG_AGO = new Date('2026-01-01T00:00:00Z');
const catalog = loadModelCatalog(repoRoot);

function goldenFolder(): { folder: string; env: NodeJS.ProcessEnv } {
  const root = mkdtempSync(join(tmpdir(), 'twice-ckpt-'));
  const folder = join(root, 'f');
  mkdirSync(join(folder, 'sub'), { recursive: true });
  mkdirSync(join(folder, '.hidden'));
  writeFileSync(join(folder, 'a.txt'), 'hello');
  writeFileSync(join(folder, 'sub', 'b.bin'), 'xyz');
  writeFileSync(join(folder, '\u00e9.json'), '\u00e9');
  writeFileSync(join(folder, 'model.safetensors.tmp'), 'half a checkpoint');
  writeFileSync(join(folder, '.hidden', 'x'), 'h');
  for (const f of ['a.txt', join('sub', 'b.bin'), '\u00e9.json']) utimesSync(join(folder, f), LONG_AGO, LONG_AGO);
  return { folder, env: { TWICE_CACHE: join(root, 'cache') } };
}

describe('checkpoint folder digest', () => {
  it('hashes paths, sizes and bytes as the worker does, leaving out hidden and temporary files', async () => {
    const { folder, env } = goldenFolder();
    const d = await digestFolder(folder, env);
    assert.deepEqual(d, { digest: GOLDEN, files: 3, bytes: 5 + 3 + 2, hashed: 3 });
  });

  it('reads unchanged files from the cache, re-reads touched ones, and follows content only', async () => {
    const { folder, env } = goldenFolder();
    await digestFolder(folder, env);
    assert.equal((await digestFolder(folder, env)).hashed, 0, 'nothing moved: nothing read');
    // a touch moves the times, not the bytes: read again, same digest
    const later = new Date(LONG_AGO.getTime() + 60_000);
    utimesSync(join(folder, 'a.txt'), later, later);
    assert.deepEqual(await digestFolder(folder, env), { digest: GOLDEN, files: 3, bytes: 10, hashed: 1 });
    // new bytes of the same size and the same mtime: the change time still tells
    writeFileSync(join(folder, 'a.txt'), 'hellp');
    utimesSync(join(folder, 'a.txt'), later, later);
    const changed = await digestFolder(folder, env);
    assert.notEqual(changed.digest, GOLDEN);
    assert.equal(changed.hashed, 1);
    // a damaged cache file is ignored, not trusted
    const cacheDir = join(env.TWICE_CACHE!, 'checkpoint-digests');
    for (const f of readdirSync(cacheDir)) writeFileSync(join(cacheDir, f), '{"folder": 1}');
    assert.deepEqual(await digestFolder(folder, env), { ...changed, hashed: 3 });
  });

  it('waits for a folder written moments ago and refuses one that never settles', async () => {
    const { folder, env } = goldenFolder();
    writeFileSync(join(folder, 'model.safetensors'), 'being written');
    await assert.rejects(
      digestFolder(folder, env, { quietMs: 10_000, attempts: 1 }),
      (err: Error) => err instanceof FolderUnstable && /model\.safetensors was modified less than 10000 ms ago/.test(err.message),
    );
    // quiet long enough: read
    const d = await digestFolder(folder, env, { quietMs: 1, attempts: 3 });
    assert.equal(d.files, 4);
  });

  it('says why a folder cannot hold a checkpoint', () => {
    const { folder } = goldenFolder();
    assert.match(folderProblem(join(folder, 'nope'))!, /checkpoint folder .*nope does not exist/);
    assert.match(folderProblem(join(folder, 'a.txt'))!, /is not a folder/);
    assert.match(folderProblem(folder)!, /holds no weights yet/);
    writeFileSync(join(folder, 'model.safetensors'), '');
    assert.equal(folderProblem(folder), null);
  });

  it('resolves a spec checkpoint to folder:<like>@<digest>, and a changed folder to another revision', async () => {
    const root = mkdtempSync(join(tmpdir(), 'twice-ckpt-'));
    const folder = join(root, 'latest');
    cpSync(join(repoRoot, 'inference', 'twice_inference', 'zoo', 'zoo-lm-attn-tiny'), folder, { recursive: true });
    for (const f of ['config.json', 'curve.json', 'model.safetensors']) utimesSync(join(folder, f), LONG_AGO, LONG_AGO);
    const activities = createCatalogActivities(repoRoot, { TWICE_CACHE: join(root, 'cache') });
    const checkpoints = { 'nightly-lm': { folder, like: 'zoo-lm-attn-tiny' } };
    const resolve = async () => activities.resolveModels({ names: ['nightly-lm', 'zoo-lm-attn-tiny'], dtype: null, checkpoints });
    const [night, fixed] = await resolve();
    assert.match(night!.revision, /^folder:zoo-lm-attn-tiny@[0-9a-f]{64}$/);
    assert.equal(night!.folder, folder);
    assert.equal(night!.family, 'transformer');
    assert.equal(fixed!.folder, undefined);
    assert.deepEqual(await resolve(), [night, fixed]);
    const weights = join(folder, 'model.safetensors');
    const bytes = readFileSync(weights);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 1, bytes.length - 1);
    writeFileSync(weights, bytes);
    utimesSync(weights, LONG_AGO, LONG_AGO);
    const [moved, same] = await resolve();
    assert.notEqual(moved!.revision, night!.revision);
    assert.deepEqual(same, fixed);
    await assert.rejects(
      activities.resolveModels({ names: ['x'], dtype: null, checkpoints: { x: { folder: join(root, 'empty'), like: 'zoo-lm-attn-tiny' } } }),
      /checkpoints\.x: checkpoint folder .*empty does not exist/,
    );
  });
});

describe('spec checkpoints', () => {
  const spec = (checkpoints: string, models = '[nightly-lm]') =>
    parseSweepSpec(`name: t\nmodels: ${models}\n${checkpoints}\ntasks: [{ name: mqar, params: { numExamples: 4 } }]\n`, 't.yaml', catalog);

  it('takes a folder model built like a catalog model', () => {
    const s = spec('checkpoints: { nightly-lm: { folder: /data/run/latest, like: zoo-lm-based-tiny } }', '[nightly-lm, zoo-based-tiny]');
    assert.deepEqual(s.checkpoints, { 'nightly-lm': { folder: '/data/run/latest', like: 'zoo-lm-based-tiny' } });
    assert.deepEqual(s.models, ['nightly-lm', 'zoo-based-tiny']);
  });

  it('refuses unknown, clashing or operator likes, and unknown keys, naming each field', () => {
    assert.throws(
      () => spec('checkpoints: { nightly-lm: { folder: /d, like: zoo-lm-basd-tiny } }'),
      /checkpoints\.nightly-lm\.like: unknown catalog model "zoo-lm-basd-tiny" \(did you mean "zoo-lm-based-tiny"\?\)/,
    );
    assert.throws(
      () => spec('checkpoints: { zoo-attn-tiny: { folder: /d, like: zoo-attn-tiny } }', '[zoo-attn-tiny]'),
      /checkpoints\.zoo-attn-tiny: the catalog already has a model named "zoo-attn-tiny"/,
    );
    assert.throws(
      () => spec('checkpoints: { nightly-lm: { folder: /d, like: op-sdpa-flash } }'),
      /checkpoints\.nightly-lm\.like: "op-sdpa-flash" is a kernel-level operator/,
    );
    assert.throws(() => spec('checkpoints: { nightly-lm: { folder: /d, like: zoo-attn-tiny, path: /e } }'), /checkpoints\.nightly-lm: unknown key "path"/);
    assert.throws(
      () => spec('checkpoints: { nightly-lm: { folder: /d/../etc, like: zoo-attn-tiny } }'),
      /checkpoints\.nightly-lm\.folder: a folder path without "\.\."/,
    );
    assert.throws(() => spec('', '[nightly-lm]'), /models\[0\]: unknown model "nightly-lm"/);
  });

  it('keeps the digest of specs without checkpoints', () => {
    assert.equal('checkpoints' in spec('', '[zoo-attn-tiny]'), false);
  });

  it("`twice plan` lists a checkpoint folder that is missing or holds no weights yet, and its like's tokenizer", () => {
    const root = mkdtempSync(join(tmpdir(), 'twice-ckpt-'));
    const env = { HF_HUB_CACHE: join(root, 'hub'), TWICE_MODEL_DIR: join(root, 'models') };
    const s = spec(`checkpoints: { nightly-lm: { folder: ${join(root, 'run')}, like: jrt-360m-30b } }`);
    const lines = describeMissing(specAssets(s, catalog, env));
    assert.match(lines[0]!, /1 model checkpoint\(s\), 1 tokenizer\(s\), 0 dataset\(s\); nothing was started/);
    assert.ok(lines.includes(`  folder ${join(root, 'run')} (for nightly-lm)`), lines.join('\n'));
    assert.ok(lines.includes('  tokenizer gpt2 (for nightly-lm)'), 'built like a hub model: its tokenizer, not its weights');
    mkdirSync(join(root, 'run'));
    writeFileSync(join(root, 'run', 'model.safetensors'), '');
    assert.deepEqual(
      specAssets(s, catalog, env)
        .filter((a) => a.foundAt === null)
        .map((a) => a.kind),
      ['tokenizer'],
    );
  });

  it('refuses a checkpoint folder outside the data roots', () => {
    const s = spec('checkpoints: { nightly-lm: { folder: /etc/ckpt, like: zoo-attn-tiny } }');
    assert.throws(
      () => checkDataPaths(s, 't.yaml', { TWICE_DATA_ROOTS: '/srv/data' }),
      /checkpoints\.nightly-lm\.folder: "\/etc\/ckpt" is outside the allowed data roots/,
    );
    checkDataPaths(s, 't.yaml', { TWICE_DATA_ROOTS: '/etc' });
  });
});
