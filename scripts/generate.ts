// Regenerates the files derived from TypeScript sources:
//   inference/twice_inference/contract.schema.json  the cross-language payloads, for the Python twin
//   inference/twice_inference/contract-names.json   queue, activity and error names, revision formats
//   inference/twice_inference/task-catalog.json     task, strategy and scorer names and versions
//   specs/sweep-spec.schema.json                    the sweep spec, for editor completion
// A test fails when either is stale, so run `npm run generate` after changing a schema.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { SCORERS, STRATEGIES, TASKS } from '../workflows/catalog';
import { CROSS_LANGUAGE_SCHEMAS, ERROR_TYPES, GPU_QUEUE, PYTHON_ACTIVITIES, REVISION_FORMATS, THROUGHPUT_STRATEGIES } from '../workflows/contract';
import { SweepSpec } from '../workflows/sweep-spec';
import { repoRoot } from '../workers/lib/paths';

export function contractJsonSchema(): Record<string, unknown> {
  return Object.fromEntries(Object.entries(CROSS_LANGUAGE_SCHEMAS).map(([name, schema]) => [name, z.toJSONSchema(schema, { io: 'input' })]));
}

/** The names both languages use, which the Python worker reads instead of restating them. */
export function contractNames(): Record<string, unknown> {
  return {
    gpuQueue: GPU_QUEUE,
    activities: PYTHON_ACTIVITIES,
    errorTypes: ERROR_TYPES,
    throughputStrategies: THROUGHPUT_STRATEGIES,
    revisionFormats: REVISION_FORMATS,
  };
}

export function specJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(SweepSpec, { io: 'input', unrepresentable: 'any' }),
    title: 'twice sweep spec',
  };
}

/** What the Python worker must implement, version for version (checked by a Python test). */
export function taskCatalog(): Record<string, unknown> {
  const versions = (defs: Record<string, { version: number }>) => Object.fromEntries(Object.entries(defs).map(([name, d]) => [name, d.version]));
  // parameter schemas carry the bounds the worker must enforce identically
  const params = (defs: Record<string, { params: z.ZodType }>) =>
    Object.fromEntries(Object.entries(defs).map(([name, d]) => [name, z.toJSONSchema(d.params, { io: 'input' })]));
  return {
    tasks: Object.fromEntries(Object.entries(TASKS).map(([name, t]) => [name, { version: t.version, kind: t.kind, synthetic: t.synthetic, scorer: t.scorer }])),
    strategies: versions(STRATEGIES),
    scorers: versions(SCORERS),
    taskParams: params(TASKS),
    strategyParams: params(STRATEGIES),
  };
}

export const GENERATED = {
  [join('inference', 'twice_inference', 'task-catalog.json')]: taskCatalog,
  [join('inference', 'twice_inference', 'contract.schema.json')]: contractJsonSchema,
  [join('inference', 'twice_inference', 'contract-names.json')]: contractNames,
  [join('specs', 'sweep-spec.schema.json')]: specJsonSchema,
};

export const render = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  for (const [file, make] of Object.entries(GENERATED)) {
    writeFileSync(join(repoRoot, file), render(make()));
    console.log(`wrote ${file}`);
  }
}
