// Where a sweep may read data from. A spec names data paths (a task's `dataDir`, an absolute
// `slices.bigramCounts`, a checkpoint folder); each must lie under a root the configuration
// allows, so a spec cannot point the worker at /etc/passwd. TWICE_DATA_ROOTS (':'-separated) replaces the default roots:
// TWICE_DATA_DIR, the Hugging Face hub cache, the home directory and the repository. The Python
// worker checks the same roots again where it reads (twice_inference/tasks/data_roots.py).
import { existsSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, isAbsolute, join, relative, resolve } from 'node:path';
import { SpecError, type SweepSpec } from '../../workflows/sweep-spec';
import { repoRoot } from './paths';

/** The folder itself once links are followed, as far as it exists. */
function real(path: string): string {
  const abs = resolve(path);
  if (existsSync(abs)) return realpathSync(abs);
  const parent = resolve(abs, '..');
  return parent === abs ? abs : join(real(parent), relative(parent, abs));
}

export function allowedDataRoots(env: NodeJS.ProcessEnv = process.env): string[] {
  const configured = env.TWICE_DATA_ROOTS?.split(delimiter).filter(Boolean);
  const hub = env.HF_HUB_CACHE || join(env.HF_HOME || join(homedir(), '.cache', 'huggingface'), 'hub');
  const roots = configured?.length ? configured : [...(env.TWICE_DATA_DIR ? [env.TWICE_DATA_DIR] : []), hub, homedir(), repoRoot];
  return roots.map(real);
}

function isUnder(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Refuses (SpecError, exit 2) a spec whose data paths leave the allowed roots, naming each. */
export function checkDataPaths(spec: SweepSpec, file: string, env: NodeJS.ProcessEnv = process.env): void {
  const roots = allowedDataRoots(env);
  const named: Array<[string, string]> = spec.tasks.flatMap((t, i) =>
    typeof t.params.dataDir === 'string' ? [[`tasks[${i}].params.dataDir`, t.params.dataDir] as [string, string]] : [],
  );
  for (const [name, c] of Object.entries(spec.checkpoints ?? {})) named.push([`checkpoints.${name}.folder`, c.folder]);
  // a relative bigramCounts is under the worker's data root, which the worker enforces
  const bigrams = spec.slices ? spec.slices.bigramCounts : null;
  if (bigrams && isAbsolute(bigrams)) named.push(['slices.bigramCounts', bigrams]);
  const problems = named
    .filter(([, path]) => !roots.some((root) => isUnder(real(path), root)))
    .map(
      ([field, path]) =>
        `${field}: "${path}" is outside the allowed data roots (${roots.join(', ')}); move the data under one of them or add its folder to TWICE_DATA_ROOTS`,
    );
  if (problems.length) throw new SpecError(file, problems);
}
