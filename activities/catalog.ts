// The model catalog as the orchestrator sees it: names, families and pinned revisions. The Python
// worker's registry reads the same files (inference/catalog/: models.json and zoo-manifest.json,
// kept outside the Python package for both sides), so both sides agree on what a model name means. A zoo model's revision is the
// SHA-256 of its weights file, so retraining it changes every key that uses it; a debug model's is
// the seed of its random weights; a Hugging Face checkpoint's is the commit its ref (`main` unless
// the catalog pins one) points to in the local hub cache when the sweep starts.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { ERROR_TYPES, formatRevision } from '../workflows/contract';
import { type ModelCatalogView, type SweepSpec } from '../workflows/sweep-spec';
import { digestFolder, folderProblem, FolderUnstable } from './checkpoint-folder';
import { resolveHubRef } from './hf-cache';

const CatalogEntry = z
  .object({
    name: z.string().min(1),
    family: z.string().min(1),
    source: z.union([
      z.object({ kind: z.literal('zoo'), path: z.string().min(1) }).loose(),
      z.object({ kind: z.literal('hf'), hfId: z.string().min(1) }).loose(),
      // seeded random weights: pipeline smoke tests on real tasks without any checkpoint
      z.object({ kind: z.literal('random'), seed: z.number().int().nonnegative() }).loose(),
      // a kernel-level operator (prefill_throughput only): pinned by its implementation version
      z.object({ kind: z.literal('operator'), op: z.string().min(1), version: z.number().int().positive() }).loose(),
    ]),
    dtype: z.string().min(1),
    revision: z.string().min(1).optional(),
  })
  .loose();
export type CatalogEntry = z.infer<typeof CatalogEntry>;

const ZooManifest = z
  .object({
    models: z.record(
      z.string(),
      z
        .object({
          sha256: z.string().regex(/^[0-9a-f]{64}$/),
          // what the model was trained to predict; absent: answers (the recall zoo before #16)
          objective: z.enum(['answers', 'next_token']).default('answers'),
        })
        .loose(),
    ),
  })
  .loose();

export interface ModelCatalog extends ModelCatalogView {
  entries: Map<string, CatalogEntry>;
  /** The revision that pins a model: weights digest (zoo) or Hugging Face commit (the ref when
   * no commit can be told, see resolveHubRef). */
  revisionOf(name: string): string;
  /** What a model was trained to predict: a zoo model's manifest says; other models are LMs
   * (Hugging Face checkpoints) or random (debug), with null for "not known". */
  objectiveOf(name: string): 'answers' | 'next_token' | null;
}

export function catalogPaths(root: string) {
  const dir = join(root, 'inference', 'catalog');
  return { catalog: join(dir, 'models.json'), zooManifest: join(dir, 'zoo-manifest.json') };
}

export function loadModelCatalog(root: string, env: NodeJS.ProcessEnv = process.env): ModelCatalog {
  const paths = catalogPaths(root);
  const raw = JSON.parse(readFileSync(paths.catalog, 'utf8')) as unknown;
  const list = z.array(CatalogEntry).parse(Array.isArray(raw) ? raw : (raw as { models: unknown }).models);
  const zoo = existsSync(paths.zooManifest) ? ZooManifest.parse(JSON.parse(readFileSync(paths.zooManifest, 'utf8'))) : { models: {} };
  const entries = new Map(list.map((e) => [e.name, e]));
  return {
    entries,
    families: Object.fromEntries(list.map((e) => [e.name, e.family])),
    objectiveOf(name) {
      const e = entries.get(name);
      if (e?.source.kind === 'zoo') return zoo.models[name]?.objective ?? null;
      return e?.source.kind === 'hf' ? 'next_token' : null;
    },
    revisionOf(name) {
      const e = entries.get(name);
      if (!e) throw new Error(`unknown model "${name}"`);
      if (e.source.kind === 'zoo') {
        const m = zoo.models[name];
        if (!m) {
          throw new Error(`zoo model "${name}" has no entry in ${paths.zooManifest}: train it first (python -m twice_inference.train)`);
        }
        return formatRevision.zoo(m.sha256);
      }
      if (e.source.kind === 'random') return formatRevision.random(e.source.seed);
      if (e.source.kind === 'operator') return formatRevision.operator(e.source.op, e.source.version);
      const ref = e.revision ?? 'main';
      return formatRevision.hf(e.source.hfId, resolveHubRef(e.source.hfId, ref, env) ?? ref);
    },
  };
}

export interface ResolvedModel {
  name: string;
  revision: string;
  family: string;
  dtype: string;
  /** a spec checkpoint's folder, which the worker reads */
  folder?: string;
}

export function createCatalogActivities(root: string, env: NodeJS.ProcessEnv = process.env) {
  return {
    /**
     * Pins each model's revision and precision; runs in an activity because it reads files. A
     * spec checkpoint's revision is its folder's content digest now (a folder still being written
     * fails the attempt, which Temporal retries).
     */
    async resolveModels(input: { names: string[]; dtype: string | null; checkpoints?: SweepSpec['checkpoints'] }): Promise<ResolvedModel[]> {
      const catalog = loadModelCatalog(root, env);
      const out: ResolvedModel[] = [];
      for (const name of input.names) {
        const declared = input.checkpoints?.[name];
        const entry = catalog.entries.get(declared?.like ?? name);
        if (!entry) throw ApplicationFailure.nonRetryable(`unknown model "${declared?.like ?? name}"`, ERROR_TYPES.invalidSpec);
        const dtype = input.dtype ?? entry.dtype;
        if (!declared) {
          out.push({ name, revision: catalog.revisionOf(name), family: entry.family, dtype });
          continue;
        }
        const problem = folderProblem(declared.folder);
        if (problem) throw ApplicationFailure.nonRetryable(`checkpoints.${name}: ${problem}`, ERROR_TYPES.invalidSpec);
        try {
          const { digest } = await digestFolder(declared.folder, env);
          out.push({ name, revision: formatRevision.folder(entry.name, digest), family: entry.family, dtype, folder: declared.folder });
        } catch (err) {
          if (err instanceof FolderUnstable) throw ApplicationFailure.retryable(`checkpoints.${name}: ${err.message}`, 'CheckpointBeingWritten');
          throw err;
        }
      }
      return out;
    },
  };
}
export type CatalogActivities = ReturnType<typeof createCatalogActivities>;
