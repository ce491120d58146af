// The environment, parsed once at process start. With nothing set, twice runs its embedded
// stack (PostgreSQL, Temporal dev server, workers) under TWICE_STATE_DIR; set DATABASE_URL and
// TEMPORAL_ADDRESS to use real deployments instead. docs/env.md lists every variable.
import { join } from 'node:path';
import { z } from 'zod';
import { repoRoot } from './paths';

const Env = z.object({
  DATABASE_URL: z.string().url().optional(),
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^:\s]+:\d+$/, 'expected host:port')
    .optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TWICE_STATE_DIR: z.string().min(1).default(join(repoRoot, '.twice')),
  TWICE_DEVICE: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
  TWICE_PYTHON_WORKERS: z.coerce.number().int().min(0).max(64).default(1),
  TWICE_SERVE_HOST: z.string().min(1).default('127.0.0.1'),
  // 0 picks a free port (the embedded stack prints which)
  TWICE_SERVE_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  TWICE_SERVE_TOKEN: z.string().min(16, 'use at least 16 characters').optional(),
});

export interface TwiceEnv {
  databaseUrl: string;
  temporalAddress: string;
  namespace: string;
  stateDir: string;
  device: 'auto' | 'cpu' | 'cuda';
  pythonWorkers: number;
  external: boolean;
  serve: { host: string; port: number; token: string | null };
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
    serve: { host: e.TWICE_SERVE_HOST, port: e.TWICE_SERVE_PORT, token: e.TWICE_SERVE_TOKEN ?? null },
  };
}
