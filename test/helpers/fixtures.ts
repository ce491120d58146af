// Disposable real services for tests: a migrated PostgreSQL in a temporary directory, and the
// whole embedded stack (the same code users run) with its state thrown away afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { migrate } from '../../workers/lib/migrations';
import { createDb, type Db } from '../../workers/lib/db-client';
import { repoRoot } from '../../workers/lib/paths';
import { postgresDataDir, startPostgres, startStack, type RunningStack, type StackConfig } from '../../workers/lib/stack';

export const MIGRATIONS_DIR = join(repoRoot, 'prisma', 'migrations');

export async function testPostgres(opts: { migrated?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'twice-pg-'));
  const pg = await startPostgres(postgresDataDir(dir), false);
  if (opts.migrated !== false) await migrate(pg.url, MIGRATIONS_DIR);
  const db: Db = createDb(pg.url);
  return {
    url: pg.url,
    db,
    async stop() {
      await db.$disconnect();
      await pg.stop();
      rmSync(dirname(postgresDataDir(dir)), { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function testStack(config: Partial<StackConfig> = {}): Promise<RunningStack & { dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'twice-stack-'));
  const stack = await startStack({ stateDir: dir, persistent: false, pythonWorkers: 0, device: 'cpu', ...config });
  return {
    ...stack,
    dir,
    async stop() {
      await stack.stop();
      rmSync(dir, { recursive: true, force: true });
      rmSync(dirname(postgresDataDir(dir)), { recursive: true, force: true });
    },
  };
}

/** Row counts of every table, to show what a step wrote (or that it wrote nothing). */
export async function tableCounts(db: Db) {
  return {
    sweeps: await db.sweep.count(),
    cells: await db.cell.count(),
    sweepCells: await db.sweepCell.count(),
    shards: await db.shardRecord.count(),
    examples: await db.exampleResult.count(),
    slices: await db.sliceStat.count(),
    throughput: await db.throughputMeasurement.count(),
  };
}
