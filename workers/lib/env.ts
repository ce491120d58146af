// The environment, parsed once at process start. With nothing set, twice runs its embedded
// stack (PostgreSQL, Temporal dev server, workers) under TWICE_STATE_DIR; set DATABASE_URL and
// TEMPORAL_ADDRESS to use real deployments instead. docs/env.md lists every variable.
import { join } from 'node:path';
import { z } from 'zod';
import { repoRoot } from './paths';

const Env = z.object({
  DATABASE_URL: z.string().url().optional(),
  TEMPORAL_ADDRESS: z.string().regex(/^[^:\s]+:\d+$/, 'expected host:port').optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TWICE_STATE_DIR: z.string().min(1).default(join(repoRoot, '.twice')),
  TWICE_DEVICE: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
  TWICE_PYTHON_WORKERS: z.coerce.number().int().min(0).max(64).default(1),
});

export interface TwiceEnv {
  databaseUrl: string;
  temporalAddress: string;
  namespace: string;
  stateDir: string;
  device: 'auto' | 'cpu' | 'cuda';
  pythonWorkers: number;
  external: boolean;
}

export function loadEnv(opts: { requireExternal?: boolean } = {}): TwiceEnv {
  const parsed = Env.safeParse(process.env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid environment:\n${problems.join('\n')}`);
  }
  const e = parsed.data;
  const external = Boolean(e.DATABASE_URL && e.TEMPORAL_ADDRESS);
  if ((e.DATABASE_URL === undefined) !== (e.TEMPORAL_ADDRESS === undefined)) {
    throw new Error('set both DATABASE_URL and TEMPORAL_ADDRESS (external stack) or neither (embedded stack)');
  }
  if (opts.requireExternal && !external) {
    throw new Error('this process needs DATABASE_URL and TEMPORAL_ADDRESS');
  }
  return {
    databaseUrl: e.DATABASE_URL ?? '',
    temporalAddress: e.TEMPORAL_ADDRESS ?? '',
    namespace: e.TEMPORAL_NAMESPACE,
    stateDir: e.TWICE_STATE_DIR,
    device: e.TWICE_DEVICE,
    pythonWorkers: e.TWICE_PYTHON_WORKERS,
    external,
  };
}
