// `twice pull <spec|model|dataset>`: downloads what a spec (or one catalog model, or one recall
// dataset) needs and this machine lacks, through huggingface_hub in the Python environment
// (twice_inference/pull.py), so HF_ENDPOINT, HF_TOKEN and its progress bars apply. Files land in
// the Hugging Face cache, where the worker and `twice plan` look.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadModelCatalog } from '../activities/catalog';
import { type Asset, datasetHfId, specAssets } from './lib/assets';
import { readToolchain, repoRoot } from './lib/paths';
import { readSpec } from './lib/sweeps';

/** The assets a pull target names: a spec file, a catalog model, a task name or a dataset id. */
export function pullTargets(target: string): Asset[] {
  const catalog = loadModelCatalog(repoRoot);
  if (/\.ya?ml$/.test(target) && existsSync(target)) return specAssets(readSpec(target).spec, catalog);
  const asSpec = (models: string[], tasks: Array<{ name: string; params: Record<string, unknown> }>) =>
    specAssets({ models, tasks } as unknown as Parameters<typeof specAssets>[0], catalog);
  const entry = catalog.entries.get(target);
  if (entry) {
    if (entry.source.kind !== 'hf') throw new Error(`model "${target}" has no download: its source is ${entry.source.kind}`);
    return asSpec([target], []);
  }
  const task = ['fda', 'swde', 'squad', 'triviaqa', 'drop', 'nq'].find(
    (t) => t === target || datasetHfId(t, {}) === target || (t === 'nq' && /^hazyresearch\/based_nq_(512|1024|2048)$/.test(target)),
  );
  if (task) {
    const variant = /_(512|1024|2048)$/.exec(target)?.[1];
    return asSpec([], [{ name: task, params: variant ? { variant: Number(variant) } : {} }]);
  }
  throw new Error(`"${target}" is not a spec file, a catalog model, a recall task or one of its datasets`);
}

export function pull(target: string, opts: { all?: boolean }, out: (line: string) => void): number {
  const wanted = pullTargets(target).filter((a) => opts.all || a.foundAt === null);
  // local data files and checkpoint folders are on no hub: say where they go instead
  for (const a of wanted.filter((w) => w.kind === 'file' || w.kind === 'folder')) {
    if (a.foundAt === null) out(`not on any hub, put it there yourself: ${a.kind} ${a.looked[0]} (for ${a.neededBy.join(', ')})`);
  }
  const assets = wanted.filter((a) => a.kind !== 'file' && a.kind !== 'folder');
  if (assets.length === 0) {
    out('nothing to pull: everything is on this machine');
    return 0;
  }
  const args = ['-m', 'twice_inference.pull'];
  for (const a of assets) args.push(a.kind === 'dataset' ? '--dataset' : '--model', a.hfId);
  out(`pulling ${assets.length}: ${assets.map((a) => a.hfId).join(', ')}`);
  const r = spawnSync(readToolchain().python, args, {
    cwd: join(repoRoot, 'inference'),
    env: { ...process.env, PYTHONPATH: join(repoRoot, 'inference') },
    stdio: 'inherit',
  });
  return r.status ?? 1;
}
