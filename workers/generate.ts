// Regenerates the files derived from TypeScript sources:
//   inference/twice_inference/contract.schema.json  the cross-language payloads, for the Python twin
//   specs/sweep-spec.schema.json                    the sweep spec, for editor completion
// A test fails when either is stale, so run `npm run generate` after changing a schema.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { CROSS_LANGUAGE_SCHEMAS } from '../workflows/contract';
import { SweepSpec } from '../workflows/sweep-spec';
import { repoRoot } from './paths';

export function contractJsonSchema(): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(CROSS_LANGUAGE_SCHEMAS).map(([name, schema]) => [name, z.toJSONSchema(schema, { io: 'input' })]),
  );
}

export function specJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(SweepSpec, { io: 'input', unrepresentable: 'any' }),
    title: 'twice sweep spec',
  };
}

export const GENERATED = {
  [join('inference', 'twice_inference', 'contract.schema.json')]: contractJsonSchema,
  [join('specs', 'sweep-spec.schema.json')]: specJsonSchema,
};

export const render = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  for (const [file, make] of Object.entries(GENERATED)) {
    writeFileSync(join(repoRoot, file), render(make()));
    console.log(`wrote ${file}`);
  }
}
