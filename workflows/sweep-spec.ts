// The sweep spec (YAML, strict) and its pure expansion into cells and shards. Pure and
// deterministic: the CLI's `plan` and the sweep workflow call the same functions, so they agree on
// every cell key. Tested in test/unit/sweep-spec.test.ts and test/unit/malformed-specs.test.ts.
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { z } from 'zod';
import { PoolSettings } from './pool';
import { SCORERS, STRATEGIES, TASKS, benchmarkPoints, generatedExampleCount, type StrategyName, type TaskName } from './catalog';
import {
  THROUGHPUT_STRATEGIES,
  type GenerationSettings,
  type ModelRef,
  type RunShardInput,
  type ScorerRef,
  type SliceSettings,
  type StrategyRef,
  type TaskRef,
} from './contract';

const slug = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]*$/, 'use lowercase letters, digits, ".", "_" and "-"')
  .max(80);

const taskNames = Object.keys(TASKS) as [TaskName, ...TaskName[]];
const strategyNames = Object.keys(STRATEGIES) as [StrategyName, ...StrategyName[]];

// A task or strategy may be written as a bare name or as { name, params }.
const named = <N extends string>(names: [N, ...N[]]) =>
  z.union([
    z.enum(names).transform((name) => ({ name, params: {} as Record<string, unknown> })),
    z.object({ name: z.enum(names), params: z.record(z.string(), z.unknown()).default({}) }).strict(),
  ]);

export const DEFAULT_SLICES: SliceSettings = {
  frequencyThreshold: 1000,
  frequencyBinEdges: [0, 1, 10, 100, 1000, 10000, 100000],
  distanceBinEdges: [1, 16, 64, 256, 1024, 4096],
  bigramCounts: null,
};

export const SweepSpec = z
  .object({
    name: slug,
    description: z.string().max(2000).optional(),
    models: z
      .array(z.union([z.string().min(1), z.object({ name: z.string().min(1) }).strict()]))
      .min(1, 'list at least one model')
      .max(200)
      .transform((ms) => ms.map((m) => (typeof m === 'string' ? m : m.name))),
    // models whose weights are read from a folder a training job writes into, each built like a
    // catalog model (its family, tokenizer and precision; the folder's config.json, if any, gives
    // the shapes). Their revision is the folder's content digest when the sweep starts. Optional,
    // without a default, so the digests of specs that do not use it stay what they were.
    checkpoints: z
      .record(
        slug,
        z
          .object({
            folder: z
              .string()
              .min(1)
              .max(1024)
              .refine((p) => !p.split(/[\\/]/).includes('..'), 'a folder path without ".."'),
            like: z.string().min(1),
          })
          .strict(),
      )
      .optional(),
    tasks: z.array(named(taskNames)).min(1, 'list at least one task').max(100),
    strategies: z
      .array(named(strategyNames))
      .min(1, 'list at least one strategy')
      .max(100)
      .default([{ name: 'default', params: {} }]),
    // default: each task's own scorer (exact for one-word synthetic answers, contains otherwise)
    scorer: z.enum(Object.keys(SCORERS) as ['contains', 'exact']).optional(),
    generation: z
      .object({
        maxNewTokens: z.number().int().min(1).max(4096).default(48),
        stopAtNewline: z.boolean().default(true),
        batchSize: z.number().int().min(1).max(1024).default(16),
        maxPromptTokens: z.number().int().min(1).max(131_072).default(2000),
      })
      .strict()
      .default({ maxNewTokens: 48, stopAtNewline: true, batchSize: 16, maxPromptTokens: 2000 }),
    slices: z
      .union(
        [
          z.literal(false),
          z
            .object({
              frequencyThreshold: z
                .number()
                .int()
                .min(1)
                .max(2 ** 31 - 1)
                .default(DEFAULT_SLICES.frequencyThreshold),
              frequencyBinEdges: z
                .array(
                  z
                    .number()
                    .int()
                    .min(0)
                    .max(2 ** 31 - 1),
                )
                .min(2)
                .max(64)
                .default(DEFAULT_SLICES.frequencyBinEdges),
              distanceBinEdges: z
                .array(
                  z
                    .number()
                    .int()
                    .min(1)
                    .max(2 ** 31 - 1),
                )
                .min(2)
                .max(64)
                .default(DEFAULT_SLICES.distanceBinEdges),
              // under the worker's data root (TWICE_DATA_DIR), which it may not leave
              bigramCounts: z
                .string()
                .min(1)
                .max(1024)
                .refine((p) => !p.split(/[\\/]/).includes('..'), 'a path under the data root, without ".."')
                .nullable()
                .default(null),
            })
            .strict(),
        ],
        { error: (issue) => (issue.input === true ? 'use false to turn slices off, or a mapping of slice settings' : undefined) },
      )
      .default(DEFAULT_SLICES),
    execution: z
      .object({
        // examples per shard activity; keeps each shard's result payload far under Temporal's 2 MB
        shardSize: z.number().int().min(1).max(5000).default(32),
        // shard activities in flight at once (Temporal caps pending activities at 2,000 per run)
        window: z.number().int().min(1).max(500).default(8),
        device: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
        // overrides the catalog's precision for every model; part of each cell's key
        dtype: z.enum(['float32', 'bfloat16', 'float16']).optional(),
        // a worker that stops heartbeating this long is presumed dead; its shard is retried
        heartbeatTimeoutSeconds: z.number().int().min(1).max(3600).default(120),
        shardTimeoutSeconds: z.number().int().min(1).max(86400).default(7200),
        maxAttempts: z.number().int().min(1).max(100).default(5),
        // caps for the GPU worker pool when the orchestrator runs a pool provider that places
        // work (kubernetes); the local provider ignores them (workflows/pool.ts)
        pool: PoolSettings.optional(),
      })
      .strict()
      .default({
        shardSize: 32,
        window: 8,
        device: 'auto',
        heartbeatTimeoutSeconds: 120,
        shardTimeoutSeconds: 7200,
        maxAttempts: 5,
      }),
  })
  .strict();
export type SweepSpec = z.infer<typeof SweepSpec>;

export class SpecError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: invalid sweep spec\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'SpecError';
  }
}

/** Catalog facts the pure parser needs: which models exist and their families. */
export interface ModelCatalogView {
  families: Record<string, string>; // model name -> family
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function zodProblems(error: z.ZodError, raw: unknown, prefix: PropertyKey[] = []): string[] {
  return error.issues.map((issue) => {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      return `${formatPath(path)}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    return `${formatPath(path)}: ${issue.message} (got ${show(valueAt(raw, path))})`;
  });
}

function closest(name: string, known: string[]): string | undefined {
  // edit distance, to suggest the model the user probably meant
  const d = (a: string, b: string) => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let prev = row[0]!;
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const tmp = row[j]!;
        row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = tmp;
      }
    }
    return row[b.length]!;
  };
  const best = known.map((k) => [k, d(name, k)] as const).sort((x, y) => x[1] - y[1])[0];
  return best && best[1] <= Math.max(2, Math.floor(name.length / 3)) ? best[0] : undefined;
}

/** Duplicate keys of every mapping in a YAML document, found in one pass over it. */
function duplicateKeys(root: unknown): string[] {
  const problems: string[] = [];
  const stack: Array<{ node: unknown; path: PropertyKey[] }> = [{ node: root, path: [] }];
  while (stack.length > 0) {
    const { node, path } = stack.pop()!;
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
        if (seen.has(key)) problems.push(`YAML: ${formatPath([...path, key])}: duplicate key "${key}"`);
        seen.add(key);
        stack.push({ node: pair.value, path: [...path, key] });
        if (problems.length >= 20) return problems;
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => stack.push({ node: item, path: [...path, i] }));
    }
  }
  return problems;
}

/** Entries of tasks or strategies whose name is not in the catalog, each with a suggestion. */
function unknownNamed(raw: object, field: 'tasks' | 'strategies', known: string[], noun: string) {
  const list = (raw as Record<string, unknown>)[field];
  if (!Array.isArray(list)) return [];
  return list.flatMap((entry, i) => {
    const name = typeof entry === 'string' ? entry : entry && typeof entry === 'object' ? (entry as { name?: unknown }).name : undefined;
    if (typeof name !== 'string' || known.includes(name)) return [];
    const hint = closest(name, known);
    return [
      {
        at: formatPath([field, i]),
        problem: `${formatPath([field, i])}: unknown ${noun} ${show(name)}${hint ? ` (did you mean "${hint}"?)` : ''}; ` + `known: ${known.join(', ')}`,
      },
    ];
  });
}

function duplicates(keys: string[]): number[] {
  const seen = new Set<string>();
  return keys.flatMap((k, i) => (seen.has(k) ? [i] : (seen.add(k), [])));
}

/**
 * Parses and validates a sweep spec. Every problem is reported at once, each naming the field
 * path and the offending value; nothing is started or written before this succeeds.
 */
export function parseSweepSpec(text: string, file: string, catalog: ModelCatalogView): SweepSpec {
  // the yaml package's own uniqueKeys check compares every pair of keys; ours is linear
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: true });
  const yamlProblems = doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`);
  if (yamlProblems.length === 0) yamlProblems.push(...duplicateKeys(doc.contents));
  if (yamlProblems.length > 0) throw new SpecError(file, yamlProblems);
  let raw: unknown;
  try {
    // an alias bomb (a few lines that expand to billions of nodes) stops at maxAliasCount
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    throw new SpecError(file, [`YAML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`]);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new SpecError(file, [`(top level): expected a mapping of keys, got ${show(raw)}`]);
  }
  const unknownNames = [...unknownNamed(raw, 'tasks', taskNames, 'task'), ...unknownNamed(raw, 'strategies', strategyNames, 'strategy')];
  const parsed = SweepSpec.safeParse(raw);
  if (!parsed.success || unknownNames.length > 0) {
    // an unknown name is said once, with the known ones, not as zod's "Invalid input"
    const named = new Set(unknownNames.map((u) => u.at));
    const rest = parsed.success ? [] : zodProblems(new z.ZodError(parsed.error.issues.filter((i) => !named.has(formatPath(i.path.slice(0, 2))))), raw);
    throw new SpecError(file, [...unknownNames.map((u) => u.problem), ...rest]);
  }
  const spec = parsed.data;
  const problems: string[] = [];

  const known = [...Object.keys(catalog.families), ...Object.keys(spec.checkpoints ?? {})];
  for (const [name, c] of Object.entries(spec.checkpoints ?? {})) {
    if (name in catalog.families) problems.push(`checkpoints.${name}: the catalog already has a model named ${show(name)}; name the folder's model otherwise`);
    const family = catalog.families[c.like];
    if (family === undefined) {
      const hint = closest(c.like, Object.keys(catalog.families));
      problems.push(`checkpoints.${name}.like: unknown catalog model ${show(c.like)}${hint ? ` (did you mean "${hint}"?)` : ''}`);
    } else if (family === OPERATOR_FAMILY) {
      problems.push(`checkpoints.${name}.like: ${show(c.like)} is a kernel-level operator, which has no weights to stand for`);
    }
  }
  spec.models.forEach((m, i) => {
    if (!known.includes(m)) {
      const hint = closest(m, known);
      problems.push(
        `models[${i}]: unknown model ${show(m)}${hint ? ` (did you mean "${hint}"?)` : ''}; ` + `\`twice models\` lists the ${known.length} known models`,
      );
    }
  });
  for (const i of duplicates(spec.models)) problems.push(`models[${i}]: duplicate entry ${show(spec.models[i])}`);

  // params are checked against each task's and strategy's own schema, defaults filled in, so
  // the stored spec (and every cell key) states every value explicitly
  spec.tasks = spec.tasks.map((t, i) => {
    const r = TASKS[t.name].params.safeParse(t.params);
    if (!r.success) problems.push(...zodProblems(r.error, raw, ['tasks', i, 'params']));
    return { name: t.name, params: r.success ? (r.data as Record<string, unknown>) : t.params };
  });
  spec.strategies = spec.strategies.map((s, i) => {
    const r = STRATEGIES[s.name].params.safeParse(s.params);
    if (!r.success) problems.push(...zodProblems(r.error, raw, ['strategies', i, 'params']));
    return { name: s.name, params: r.success ? (r.data as Record<string, unknown>) : s.params };
  });
  for (const i of duplicates(spec.tasks.map((t) => canonicalJson(t)))) {
    problems.push(`tasks[${i}]: duplicate entry ${show(spec.tasks[i]?.name)} with the same params`);
  }
  for (const i of duplicates(spec.strategies.map((s) => canonicalJson(s)))) {
    problems.push(`strategies[${i}]: duplicate entry ${show(spec.strategies[i]?.name)} with the same params`);
  }
  if (spec.slices === false) {
    spec.tasks.forEach((t, i) => {
      if (TASKS[t.name].kind === 'perplexity') problems.push(`tasks[${i}]: the perplexity task needs slice settings; remove "slices: false"`);
    });
  } else {
    for (const key of ['frequencyBinEdges', 'distanceBinEdges'] as const) {
      const edges = spec.slices[key];
      if (edges.some((e, i) => i > 0 && e <= edges[i - 1]!)) {
        problems.push(`slices.${key}: bin edges must increase strictly (got ${show(edges)})`);
      }
    }
  }
  if (problems.length === 0) {
    const resolved = resolveForCheck(spec, catalog);
    const cells = expandCells(resolved);
    if (cells.length === 0) {
      problems.push(`no cell to run: every (model, task, strategy) is left out: ${skippedPairs(resolved).join('; ')}`);
    }
    // expansion is bounded before anything starts: the plan and the sweep hold every shard
    const shards = cells.reduce((n, c) => n + Math.ceil(c.numExamples / shardWidth(c, spec.execution.shardSize)), 0);
    if (shards > MAX_SHARDS) {
      problems.push(
        `execution.shardSize: the grid cuts into ${shards} shards, more than ${MAX_SHARDS}; use fewer examples or larger shards (got ${spec.execution.shardSize})`,
      );
    }
  }
  if (problems.length > 0) throw new SpecError(file, problems);
  return spec;
}

/** JSON with sorted keys: the same value always gives the same bytes, hence the same digest. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function digestOf(value: unknown): string {
  return bytesToHex(sha256(utf8ToBytes(canonicalJson(value))));
}

/** A spec with every external fact pinned: model revisions, task sizes and data digests. */
export interface ResolvedSweep {
  spec: SweepSpec;
  specDigest: string;
  models: Array<ModelRef & { family: string; dtype: string }>;
  tasks: Array<TaskRef & { numExamples: number; dataDigest: string }>;
}

export interface Cell {
  key: string;
  model: ModelRef & { family: string; dtype: string };
  task: TaskRef;
  taskDataDigest: string;
  numExamples: number;
  strategy: StrategyRef;
  generation: GenerationSettings;
  scorer: ScorerRef;
  slices: SliceSettings | null;
}

/** Most shards one sweep may hold: bounds the plan's and the workflow's memory and history. */
export const MAX_SHARDS = 100_000;

function resolveForCheck(spec: SweepSpec, catalog: ModelCatalogView): ResolvedSweep {
  return {
    spec,
    specDigest: '',
    models: spec.models.map((name) => ({
      name,
      revision: 'unresolved',
      family: catalog.families[name] ?? catalog.families[spec.checkpoints?.[name]?.like ?? ''] ?? 'unknown',
      dtype: 'float32',
    })),
    tasks: spec.tasks.map((t) => ({
      name: t.name,
      version: TASKS[t.name].version,
      params: t.params,
      // generated tasks' sizes are known now; a dataset's is bounded by its limit, if any
      numExamples: TASKS[t.name].synthetic ? generatedExampleCount(t.name, t.params) : typeof t.params.limit === 'number' ? t.params.limit : 1,
      dataDigest: '',
    })),
  };
}

/** A generated task pinned: its size follows from its params, and the params are its data. */
export function resolveGeneratedTask(t: { name: string; params: Record<string, unknown> }, opts: { rounds?: boolean } = {}): ResolvedSweep['tasks'][number] {
  const def = TASKS[t.name as TaskName];
  if (!def.synthetic) throw new Error(`task ${t.name} reads a dataset; only a worker can describe it`);
  const ref = { name: t.name, version: def.version, params: t.params };
  return { ...ref, numExamples: generatedExampleCount(t.name as TaskName, t.params, opts), dataDigest: digestOf(ref) };
}

/** Which cells the grid holds, model-major (load a model once, stream its cells). */
export function expandCells(resolved: ResolvedSweep): Cell[] {
  const { spec } = resolved;
  const cells: Cell[] = [];
  const generation: GenerationSettings = { ...spec.generation };
  const slices = spec.slices === false ? null : { ...spec.slices };
  for (const model of resolved.models) {
    for (const task of resolved.tasks) {
      const taskDef = TASKS[task.name as TaskName];
      const measuring = taskDef.kind === 'throughput';
      const perplexity = taskDef.kind === 'perplexity';
      // a measurement task scores nothing, whatever the spec's scorer says
      const scorerName = measuring || perplexity ? taskDef.scorer : (spec.scorer ?? taskDef.scorer);
      const scorer: ScorerRef = { name: scorerName, version: SCORERS[scorerName].version };
      for (const s of spec.strategies) {
        const def = STRATEGIES[s.name as StrategyName];
        const families: readonly string[] | null = def.families;
        if (families && !families.includes(model.family)) continue;
        if (measuring && !THROUGHPUT_STRATEGIES.includes(s.name)) continue;
        // a corpus is read as it is: no prompt to lay out
        if (perplexity && s.name !== 'default') continue;
        // a kernel-level operator has no tokenizer or LM head: it can only be timed
        if (!measuring && model.family === OPERATOR_FAMILY) continue;
        const strategy: StrategyRef = { name: s.name, version: def.version, params: s.params };
        const taskRef: TaskRef = { name: task.name, version: task.version, params: task.params };
        const modelKey = { name: model.name, revision: model.revision, dtype: model.dtype };
        // everything that determines the outcome, and nothing else (batch size, shard size and
        // the window only change how the work is cut, not its result); where a dataset is read
        // from is not what it holds: the data digest stands for it
        const { dataDir: _where, ...keyParams } = taskRef.params;
        const key = measuring
          ? // timings belong to the hardware that made them: the device is part of the key, and
            // generation settings and slices, which a benchmark does not use, are not
            digestOf({ model: modelKey, task: { ...taskRef, dataDigest: task.dataDigest }, strategy, scorer, device: spec.execution.device })
          : perplexity
            ? // nothing is generated: generation settings do not change a perplexity
              digestOf({ model: modelKey, task: { ...taskRef, dataDigest: task.dataDigest }, strategy, scorer, slices })
            : digestOf({
                model: modelKey,
                task: { ...taskRef, params: keyParams, dataDigest: task.dataDigest },
                strategy,
                generation: {
                  maxNewTokens: generation.maxNewTokens,
                  stopAtNewline: generation.stopAtNewline,
                  maxPromptTokens: generation.maxPromptTokens,
                },
                scorer,
                slices,
              });
        cells.push({
          key,
          model,
          task: taskRef,
          taskDataDigest: task.dataDigest,
          numExamples: task.numExamples,
          strategy,
          generation,
          scorer,
          slices: measuring ? null : slices,
        });
      }
    }
  }
  return cells;
}

/**
 * The stored fields of a cell (its database columns) that feed its key in expandCells, with how
 * to name them: what tells a user why a cell re-ran. Keep in step with the digest above.
 */
export const CELL_KEY_FIELDS = [
  ['modelRevision', 'model revision'],
  ['dtype', 'precision'],
  ['taskVersion', 'task version'],
  ['taskParams', 'task params'],
  ['taskDataDigest', 'task data'],
  ['strategyVersion', 'strategy version'],
  ['strategyParams', 'strategy params'],
  ['generation', 'generation settings'],
  ['scorer', 'scorer'],
  ['slices', 'slice settings'],
] as const;

/** The catalog family of kernel-level operators (op-based-triton, op-sdpa-flash, ...). */
export const OPERATOR_FAMILY = 'operator';

/** What a prefill benchmark can time: the prompt once, or read `repeats` times (JRT-Prompt). */

/** Strategy/model pairs left out of the grid, for `twice plan` to explain. */
export function skippedPairs(resolved: ResolvedSweep): string[] {
  const out: string[] = [];
  for (const task of resolved.tasks) {
    if (TASKS[task.name as TaskName].kind !== 'throughput') continue;
    for (const s of resolved.spec.strategies) {
      if (!THROUGHPUT_STRATEGIES.includes(s.name)) {
        out.push(`${task.name} x ${s.name}: a prefill benchmark times ${THROUGHPUT_STRATEGIES.join(' and ')} only`);
      }
    }
  }
  for (const task of resolved.tasks) {
    if (TASKS[task.name as TaskName].kind !== 'perplexity') continue;
    for (const s of resolved.spec.strategies) {
      if (s.name !== 'default') out.push(`${task.name} x ${s.name}: a perplexity task reads its corpus as it is, under default only`);
    }
  }
  for (const model of resolved.models) {
    if (model.family !== OPERATOR_FAMILY) continue;
    for (const task of resolved.tasks) {
      if (TASKS[task.name as TaskName].kind !== 'throughput') {
        out.push(`${model.name} x ${task.name}: ${model.name} is a kernel-level operator, timed by prefill_throughput only`);
      }
    }
  }
  for (const model of resolved.models) {
    for (const s of resolved.spec.strategies) {
      const families: readonly string[] | null = STRATEGIES[s.name as StrategyName].families;
      if (families && !families.includes(model.family)) {
        out.push(`${model.name} x ${s.name}: ${s.name} applies to ${families.join(', ')} models only`);
      }
    }
  }
  return out;
}

export interface Shard {
  cellKey: string;
  /** a shard is named by its first example: shard sizes may differ between sweeps of one cell */
  shardIndex: number;
  exampleStart: number;
  exampleEnd: number;
}

/**
 * The shards still to run for a cell: the examples no recorded range covers, cut into pieces of
 * at most shardSize. What is done is known by example, not by shard number, because the shard
 * size is not part of the cell key: a sweep resuming another's cell may cut it differently.
 */
export function shardsOf(cell: Pick<Cell, 'key' | 'numExamples'>, shardSize: number, recorded: ReadonlyArray<readonly [number, number]> = []): Shard[] {
  const out: Shard[] = [];
  const covered = [...recorded].sort((a, b) => a[0] - b[0]);
  let next = 0;
  const cut = (from: number, to: number) => {
    for (let start = from; start < to; start += shardSize) {
      out.push({ cellKey: cell.key, shardIndex: start, exampleStart: start, exampleEnd: Math.min(to, start + shardSize) });
    }
  };
  for (const [start, end] of covered) {
    if (start > next) cut(next, Math.min(start, cell.numExamples));
    next = Math.max(next, end);
  }
  cut(next, cell.numExamples);
  return out;
}

/**
 * How wide a cell's shards are: a prefill benchmark is cut into its rounds (one shard times every
 * point once), whatever the spec's shardSize; other cells by shardSize. A benchmark resolved
 * before rounds (one example per point) is cut by shardSize, as it was then.
 */
export function shardWidth(cell: Pick<Cell, 'task' | 'numExamples'>, shardSize: number): number {
  if (TASKS[cell.task.name as TaskName]?.kind !== 'throughput') return shardSize;
  const points = benchmarkPoints(cell.task.params);
  return cell.numExamples > points ? points : shardSize;
}

/**
 * The order shards are dispatched in when benchmarks are timed in rounds: every other shard first,
 * in the grid's model-major order, then the benchmark shards round-major (round 1 of every
 * benchmark cell, then round 2, ...), so each model's timings spread over the same stretch of
 * machine load instead of one model's all at once. Sorting is stable: within a round, grid order.
 */
export function roundMajor<J extends { cell: Cell; shard: Shard }>(jobs: J[]): J[] {
  const roundOf = (job: J) => {
    if (TASKS[job.cell.task.name as TaskName]?.kind !== 'throughput') return -1;
    return Math.floor(job.shard.exampleStart / benchmarkPoints(job.cell.task.params));
  };
  return jobs
    .map((job, i) => ({ job, i, round: roundOf(job) }))
    .sort((a, b) => a.round - b.round || a.i - b.i)
    .map((x) => x.job);
}

/** What a worker is sent to run one shard of a cell. */
export function shardRequest(cell: Cell, shard: Shard, device: RunShardInput['device']): RunShardInput {
  return {
    cellKey: cell.key,
    shardIndex: shard.shardIndex,
    exampleStart: shard.exampleStart,
    exampleEnd: shard.exampleEnd,
    model: { name: cell.model.name, revision: cell.model.revision, folder: cell.model.folder },
    task: cell.task,
    strategy: cell.strategy,
    generation: cell.generation,
    scorer: cell.scorer,
    slices: cell.slices,
    device,
  };
}

/** How many examples the recorded ranges of a cell cover (ranges may not overlap). */
export function coveredExamples(recorded: ReadonlyArray<readonly [number, number]>): number {
  return recorded.reduce((sum, [start, end]) => sum + (end - start), 0);
}
