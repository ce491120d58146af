// `twice models`: every model a spec may name, whether its weights are on this machine (for
// Hugging Face checkpoints, found where the worker looks), its parameter count and its decoding
// state size at a 2048-token prompt. Counts come from the Python registry building each entry on
// the meta device (no weights needed); without the Python environment those columns read "?".
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { z } from 'zod';
import { loadModelCatalog } from '../activities/catalog';
import { textTable } from './lib/report';
import { locateModel } from './lib/assets';
import { readToolchain, repoRoot } from './lib/paths';

const Described = z.array(
  z
    .object({
      name: z.string(),
      params: z.number().nullable(),
      state_bytes: z.number().nullable(),
    })
    .loose(),
);

function describeInPython(): Map<string, { params: number | null; stateBytes: number | null }> | string {
  let python: string;
  try {
    python = readToolchain().python;
  } catch (err) {
    return (err as Error).message;
  }
  const r = spawnSync(python, ['-m', 'twice_inference.models.registry', '--list', '--json'], {
    cwd: join(repoRoot, 'inference'),
    env: { ...process.env, PYTHONPATH: join(repoRoot, 'inference') },
    encoding: 'utf8',
    timeout: 300_000,
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) return `the Python registry failed: ${(r.stderr || String(r.error)).trim().split('\n').pop()}`;
  const rows = Described.parse(JSON.parse(r.stdout));
  return new Map(rows.map((row) => [row.name, { params: row.params, stateBytes: row.state_bytes }]));
}

const human = (n: number | null | undefined, unit = '') => {
  if (n === null || n === undefined) return '?';
  for (const [scale, suffix] of [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ] as const) {
    if (n >= scale) return `${(n / scale).toFixed(n >= 10 * scale ? 0 : 1)}${suffix}${unit}`;
  }
  return `${n}${unit}`;
};

export function printModels(out: (line: string) => void, note: (line: string) => void): void {
  const catalog = loadModelCatalog(repoRoot);
  const described = describeInPython();
  if (typeof described === 'string') note(`parameter counts and state sizes unavailable: ${described}`);
  const table = textTable(['model', 'family', 'source', 'weights', 'params', 'state @2048']);
  for (const e of catalog.entries.values()) {
    let weights: string;
    if (e.source.kind === 'hf') weights = locateModel(e.source.hfId, e.revision ?? null) ? 'present' : 'missing';
    else if (e.source.kind === 'zoo') weights = 'in repo';
    else weights = e.source.kind === 'random' ? 'seeded' : '-';
    const d = typeof described === 'string' ? undefined : described.get(e.name);
    const source = e.source.kind === 'hf' ? `hf:${e.source.hfId}` : e.source.kind;
    table.push([e.name, e.family, source, weights, human(d?.params), human(d?.stateBytes, 'B')]);
  }
  out(table.toString());
}
