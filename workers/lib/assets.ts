// The files a spec needs on this machine before anything starts: Hugging Face checkpoints, the
// tokenizers they name, and the paper's recall datasets. Looked up exactly where the Python worker
// looks (TWICE_MODEL_DIR / TWICE_DATA_DIR / TWICE_TOKENIZER_DIR, then the Hugging Face cache), so
// `twice plan` and `twice run` can list everything missing at once instead of failing a workflow
// on the first; `twice pull` fetches what is listed here.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { type ModelCatalog } from '../../activities/catalog';
import { folderProblem } from '../../activities/checkpoint-folder';
import { hubRepoDir } from '../../activities/hf-cache';
import { type SweepSpec } from '../../workflows/sweep-spec';
import { repoRoot } from './paths';

/** The hazyresearch re-releases the paper's harness loads (its `validation` split). */
export function datasetHfId(task: string, params: Record<string, unknown>): string | null {
  const fixed: Record<string, string> = {
    fda: 'hazyresearch/based-fda',
    swde: 'hazyresearch/based-swde-v2',
    squad: 'hazyresearch/based-squad',
    triviaqa: 'hazyresearch/based_triviaqa',
    drop: 'hazyresearch/based_drop',
  };
  if (task === 'nq') return `hazyresearch/based_nq_${String(params.variant ?? 1024)}`;
  return fixed[task] ?? null;
}

// a `file` is a local data file a spec names (a perplexity corpus, a bigram table) and a `folder`
// a spec's checkpoint folder: no hub has them, so `twice pull` cannot fetch them
export type AssetKind = 'model' | 'tokenizer' | 'dataset' | 'file' | 'folder';

export interface Asset {
  kind: AssetKind;
  /** the Hugging Face repository id; for a file or folder, the path as the spec names it */
  hfId: string;
  /** what in the spec needs it: model names or task names */
  neededBy: string[];
  /** where it was found, or null */
  foundAt: string | null;
  /** every place looked, in order; the first is where to put it */
  looked: string[];
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function snapshots(repoDir: string, revision: string | null): string[] {
  const dirs: string[] = [];
  const ref = join(repoDir, 'refs', revision ?? 'main');
  if (existsSync(ref)) dirs.push(join(repoDir, 'snapshots', readFileSync(ref, 'utf8').trim()));
  else if (revision && /^[0-9a-f]{40}$/.test(revision)) dirs.push(join(repoDir, 'snapshots', revision));
  if (revision === null && isDir(join(repoDir, 'snapshots'))) {
    for (const d of readdirSync(join(repoDir, 'snapshots')).sort()) dirs.push(join(repoDir, 'snapshots', d));
  }
  if (dirs.length === 0) dirs.push(join(repoDir, 'snapshots', revision ?? '<commit>'));
  return [...new Set(dirs)];
}

const hasWeights = (dir: string) => isDir(dir) && readdirSync(dir).some((f) => f.endsWith('.safetensors') || f === 'pytorch_model.bin');

function hasSplit(dir: string): boolean {
  if (!isDir(dir)) return false;
  if (existsSync(join(dir, 'validation.jsonl'))) return true;
  const walk = (d: string): boolean =>
    readdirSync(d, { withFileTypes: true }).some((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.parquet')));
  return walk(dir);
}

function locate(kind: AssetKind, hfId: string, revision: string | null, dataDir: string | null, env: NodeJS.ProcessEnv) {
  const looked: string[] = [];
  let test: (dir: string) => boolean;
  if (kind === 'model') {
    if (env.TWICE_MODEL_DIR) looked.push(join(env.TWICE_MODEL_DIR, hfId));
    looked.push(...snapshots(hubRepoDir('model', hfId, env), revision));
    test = hasWeights;
  } else if (kind === 'tokenizer') {
    if (env.TWICE_TOKENIZER_DIR) looked.push(join(env.TWICE_TOKENIZER_DIR, hfId));
    looked.push(...snapshots(hubRepoDir('model', hfId, env), null));
    test = (dir) => existsSync(join(dir, 'tokenizer.json'));
  } else {
    if (dataDir) looked.push(dataDir);
    else {
      if (env.TWICE_DATA_DIR) looked.push(join(env.TWICE_DATA_DIR, hfId));
      looked.push(...snapshots(hubRepoDir('dataset', hfId, env), null));
    }
    test = hasSplit;
  }
  return { foundAt: looked.find(test) ?? null, looked };
}

/**
 * The worker's data root for relative data paths: TWICE_DATA_DIR, else the folder the embedded
 * stack starts Python workers in.
 */
export function dataRoot(env: NodeJS.ProcessEnv): string {
  return env.TWICE_DATA_DIR || join(repoRoot, 'inference');
}

const isFile = (path: string) => {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

/** Where a checkpoint's weights are on this machine, or null. */
export function locateModel(hfId: string, revision: string | null, env: NodeJS.ProcessEnv = process.env): string | null {
  return locate('model', hfId, revision, null, env).foundAt;
}

/** Every checkpoint, tokenizer and dataset the spec needs, found or not. */
export function specAssets(spec: SweepSpec, catalog: ModelCatalog, env: NodeJS.ProcessEnv = process.env): Asset[] {
  const wanted = new Map<string, { kind: AssetKind; hfId: string; revision: string | null; dataDir: string | null; neededBy: Set<string> }>();
  const want = (kind: AssetKind, hfId: string, by: string, revision: string | null, dataDir: string | null = null) => {
    const key = `${kind}:${hfId}:${dataDir ?? ''}`;
    const entry = wanted.get(key) ?? { kind, hfId, revision, dataDir, neededBy: new Set<string>() };
    entry.neededBy.add(by);
    wanted.set(key, entry);
  };
  for (const name of spec.models) {
    const like = spec.checkpoints?.[name]?.like;
    const entry = catalog.entries.get(like ?? name);
    if (entry?.source.kind !== 'hf') continue;
    // a checkpoint folder built like a hub model needs its tokenizer, not its weights
    if (!like) want('model', entry.source.hfId, name, entry.revision ?? null);
    const tokenizer = (entry.source as { tokenizer?: unknown }).tokenizer;
    if (typeof tokenizer === 'string' && tokenizer !== 'own') want('tokenizer', tokenizer, name, null);
  }
  for (const task of spec.tasks) {
    const params = (task.params ?? {}) as Record<string, unknown>;
    const hfId = datasetHfId(task.name, params);
    if (hfId) want('dataset', hfId, task.name, null, typeof params.dataDir === 'string' ? params.dataDir : null);
  }
  const hubAssets: Asset[] = [...wanted.values()].map((w) => ({
    kind: w.kind,
    hfId: w.hfId,
    neededBy: [...w.neededBy],
    ...locate(w.kind, w.hfId, w.revision, w.dataDir, env),
  }));
  return [...hubAssets, ...localAssets(spec, env)];
}

/** The spec's local data files and checkpoint folders, found or not. */
function localAssets(spec: SweepSpec, env: NodeJS.ProcessEnv): Asset[] {
  const files = new Map<string, Set<string>>();
  const want = (path: string, by: string) => files.set(path, (files.get(path) ?? new Set()).add(by));
  for (const task of spec.tasks) {
    const corpus = (task.params ?? {}).corpus;
    if (task.name === 'perplexity' && typeof corpus === 'string' && !corpus.startsWith('synthetic:')) want(corpus, `${task.name} corpus`);
  }
  if (spec.slices && spec.slices.bigramCounts) want(spec.slices.bigramCounts, 'slices.bigramCounts');
  const out: Asset[] = [...files].map(([path, by]) => {
    const at = isAbsolute(path) ? path : join(dataRoot(env), path);
    return { kind: 'file', hfId: path, neededBy: [...by], foundAt: isFile(at) ? at : null, looked: [at] };
  });
  for (const [name, c] of Object.entries(spec.checkpoints ?? {})) {
    if (!spec.models.includes(name)) continue;
    out.push({ kind: 'folder', hfId: c.folder, neededBy: [name], foundAt: folderProblem(c.folder) ? null : c.folder, looked: [c.folder] });
  }
  return out;
}

/** The lines `twice plan` / `twice run` print when something is missing (empty when nothing is). */
export function describeMissing(assets: Asset[]): string[] {
  const missing = assets.filter((a) => a.foundAt === null);
  if (missing.length === 0) return [];
  const count = (k: AssetKind) => missing.filter((a) => a.kind === k).length;
  const local = count('file') + count('folder');
  const lines = [
    `missing on this machine: ${count('model') + count('folder')} model checkpoint(s), ${count('tokenizer')} tokenizer(s), ${count('dataset')} dataset(s)` +
      `${count('file') ? `, ${count('file')} data file(s)` : ''}; nothing was started.`,
  ];
  for (const kind of ['model', 'folder', 'tokenizer', 'dataset', 'file'] as const) {
    for (const a of missing.filter((m) => m.kind === kind)) {
      lines.push(`  ${kind} ${a.hfId} (for ${a.neededBy.join(', ')})`);
      lines.push(`      put it at ${a.looked[0]}${a.looked.length > 1 ? `; also looked in ${a.looked.slice(1).join(', ')}` : ''}`);
    }
  }
  if (missing.length > local) {
    lines.push(
      'Fetch them with `npm run twice -- pull <spec>` on a machine online (Hugging Face hub, or ' +
        'HF_ENDPOINT), or set TWICE_MODEL_DIR, TWICE_TOKENIZER_DIR and TWICE_DATA_DIR to folders ' +
        'holding them (docs/env.md).',
    );
  }
  if (count('file')) {
    lines.push(
      'Data files come from no hub: put each where listed (a relative path is under TWICE_DATA_DIR); ' +
        'a bigram table is what `npm run twice -- bigrams build <training corpus> --out <folder>` writes (docs/protocol.md).',
    );
  }
  if (count('folder')) lines.push('A checkpoint folder is what your training job writes: run it first, or fix the path in the spec.');
  return lines;
}
