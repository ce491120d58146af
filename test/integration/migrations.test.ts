// The migration runner on real PostgreSQL: a fresh database migrates, keeps Prisma's bookkeeping,
// round-trips every model through the generated client, refuses an edited migration, and a second
// run is a no-op.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { listMigrations, migrate } from '../../workers/lib/migrations';
import { MIGRATIONS_DIR, testPostgres } from '../helpers/fixtures';

/** A cell with nothing recorded yet, for the totals the triggers keep. */
async function bareCell(db: Awaited<ReturnType<typeof testPostgres>>['db'], key: string, numExamples: number, numShards: number) {
  await db.cell.create({
    data: {
      key,
      modelName: 'm',
      modelRevision: 'r',
      modelFamily: 'based',
      dtype: 'float32',
      taskName: 't',
      taskVersion: 1,
      taskParams: {},
      taskDataDigest: 'dd',
      strategyName: 's',
      strategyVersion: 1,
      strategyParams: {},
      generation: {},
      scorer: { name: 'exact' },
      numExamples,
      numShards,
    },
  });
}

describe('migrations', () => {
  let fx: Awaited<ReturnType<typeof testPostgres>>;
  before(async () => {
    fx = await testPostgres({ migrated: false });
  });
  after(async () => {
    await fx.stop();
  });

  it('applies every migration once, with Prisma-compatible bookkeeping', async () => {
    const names = listMigrations(MIGRATIONS_DIR).map((m) => m.name);
    const first = await migrate(fx.url, MIGRATIONS_DIR);
    assert.deepEqual(first.applied, names);
    const second = await migrate(fx.url, MIGRATIONS_DIR);
    assert.deepEqual(second, { applied: [], alreadyApplied: names });
    const client = new pg.Client({ connectionString: fx.url });
    await client.connect();
    const { rows } = await client.query('SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations"');
    await client.end();
    assert.equal(rows.length, names.length);
    for (const r of rows) {
      assert.match(r.checksum, /^[0-9a-f]{64}$/);
      assert.ok(r.finished_at instanceof Date);
      assert.equal(r.applied_steps_count, 1);
    }
  });

  it('refuses a migration edited after it was applied', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'twice-mig-'));
    cpSync(MIGRATIONS_DIR, dir, { recursive: true });
    const [first] = listMigrations(dir);
    writeFileSync(join(dir, first!.name, 'migration.sql'), `${first!.sql.toString()}\n-- edited\n`);
    await assert.rejects(migrate(fx.url, dir), /was changed after it was applied/);
  });

  it('round-trips every model through the generated client', async () => {
    const db = fx.db;
    const key = 'a'.repeat(64);
    await db.sweep.create({
      data: { id: 's1', name: 'n', specFile: 'f.yaml', specYaml: 'name: n', spec: { a: 1 }, specDigest: 'd', workflowId: 'w' },
    });
    await db.cell.create({
      data: {
        key,
        modelName: 'm',
        modelRevision: 'r',
        modelFamily: 'based',
        dtype: 'float32',
        taskName: 't',
        taskVersion: 1,
        taskParams: { n: 1 },
        taskDataDigest: 'dd',
        strategyName: 's',
        strategyVersion: 1,
        strategyParams: {},
        generation: { maxNewTokens: 1 },
        scorer: { name: 'exact' },
        slices: { x: 1 },
        numExamples: 2,
        numShards: 1,
      },
    });
    await db.sweepCell.create({ data: { sweepId: 's1', cellKey: key, reused: true } });
    await db.shardRecord.create({
      data: {
        cellKey: key,
        shardIndex: 0,
        exampleStart: 0,
        exampleEnd: 2,
        loadSeconds: 0.5,
        prefillSeconds: 0.25,
        decodeSeconds: 0.125,
        prefillTokens: 7,
        batches: 1,
        worker: { pid: 1 },
      },
    });
    await db.exampleResult.create({
      data: { cellKey: key, exampleId: 0, shardIndex: 0, promptDigest: 'p', prediction: 'v1', gold: ['v1'], score: 1, promptTokens: 5, generatedTokens: 1 },
    });
    await db.sliceStat.create({ data: { cellKey: key, shardIndex: 0, slice: 'ar_hit', nllSum: 1.5, tokenCount: 3 } });
    const t = await db.throughputMeasurement.create({
      data: {
        cellKey: key,
        shardIndex: 0,
        source: 'shard-prefill',
        implementation: 'm',
        tokens: 7,
        seconds: 0.25,
        tokensPerSecond: 28,
        device: 'cpu',
        versions: { torch: 'x' },
      },
    });
    const back = await db.cell.findUniqueOrThrow({
      where: { key },
      include: { sweeps: { include: { sweep: true } }, shards: true, examples: true, sliceStats: true, throughput: true },
    });
    assert.equal(back.sweeps[0]!.sweep.specYaml, 'name: n');
    assert.equal(back.sweeps[0]!.reused, true);
    assert.deepEqual(back.taskParams, { n: 1 });
    assert.equal(back.shards[0]!.prefillTokens, 7);
    assert.deepEqual(back.examples[0]!.gold, ['v1']);
    assert.equal(back.sliceStats[0]!.nllSum, 1.5);
    assert.equal(back.throughput[0]!.id, t.id);
    // unique keys are what make recording idempotent
    await assert.rejects(
      db.exampleResult.create({
        data: { cellKey: key, exampleId: 0, shardIndex: 0, promptDigest: 'p', prediction: 'x', gold: [], score: 0, promptTokens: 1, generatedTokens: 0 },
      }),
    );
    await db.sweep.delete({ where: { id: 's1' } });
    assert.equal(await db.sweepCell.count(), 0);
  });

  it('keeps per-cell example totals in cell_scores through inserts, updates and deletes', async () => {
    const db = fx.db;
    const key = 'b'.repeat(64);
    await bareCell(db, key, 4, 1);
    const example = (exampleId: number, score: number) => ({
      cellKey: key,
      exampleId,
      shardIndex: 0,
      promptDigest: 'p',
      prediction: 'v',
      gold: ['v'],
      score,
      promptTokens: 1,
      generatedTokens: 1,
    });
    // [examples, correct, score sum, bit i: example i present, bit i: example i correct]
    const totals = async () => {
      const row = await db.cellScore.findUnique({ where: { cellKey: key } });
      return row && [row.examples, row.correct, row.scoreSum, row.seen, row.hits];
    };
    await db.exampleResult.createMany({ data: [example(0, 1), example(1, 0), example(2, 1)] });
    assert.deepEqual(await totals(), [3, 2, 2, '111', '101']);
    // out of order, past a gap: the bitmaps grow, the gap stays unset
    await db.exampleResult.create({ data: example(5, 1) });
    assert.deepEqual(await totals(), [4, 3, 3, '111001', '101001']);
    await db.exampleResult.updateMany({ where: { cellKey: key, exampleId: { in: [0, 5] } }, data: { score: 0 } });
    assert.deepEqual(await totals(), [4, 1, 1, '111001', '001000']);
    await db.exampleResult.deleteMany({ where: { cellKey: key, exampleId: { in: [1, 2] } } });
    assert.deepEqual(await totals(), [2, 0, 0, '100001', '000000']);
    // one definition of correct, the same the comparisons use: a score of at least 0.5
    await db.exampleResult.createMany({ data: [example(3, 0.5), example(4, 0.49)] });
    assert.deepEqual(await totals(), [4, 1, 0.99, '100111', '000100']);
    const [verdicts] = await db.$queryRaw<Array<{ half: boolean; below: boolean; one: boolean; zero: boolean }>>`
      SELECT score_is_correct(0.5) AS half, score_is_correct(0.4999) AS below, score_is_correct(1) AS one, score_is_correct(0) AS zero`;
    assert.deepEqual(verdicts, { half: true, below: false, one: true, zero: false });
    // deleting the cell cascades to its examples, and their totals go with them
    await db.cell.delete({ where: { key } });
    assert.equal(await totals(), null);
  });

  it('keeps per-cell shard and slice totals through inserts, updates and deletes', async () => {
    const db = fx.db;
    const key = 'c'.repeat(64);
    await bareCell(db, key, 30, 3);
    const shard = (shardIndex: number, prefillTokens: number, prefillSeconds: number) => ({
      cellKey: key,
      shardIndex,
      exampleStart: shardIndex * 10,
      exampleEnd: shardIndex * 10 + 10,
      loadSeconds: 0,
      prefillSeconds,
      decodeSeconds: 0,
      prefillTokens,
      batches: 1,
      worker: {},
    });
    const totals = async () => {
      const row = await db.cellShardTotal.findUnique({ where: { cellKey: key } });
      return row && [row.shards, row.examplesDone, Number(row.prefillTokens), row.prefillSeconds];
    };
    await db.shardRecord.createMany({ data: [shard(0, 100, 0.5), shard(1, 200, 0.25)] });
    assert.deepEqual(await totals(), [2, 20, 300, 0.75]);
    await db.shardRecord.create({ data: shard(2, 50, 0.125) });
    assert.deepEqual(await totals(), [3, 30, 350, 0.875]);
    await db.shardRecord.updateMany({ where: { cellKey: key, shardIndex: 0 }, data: { prefillTokens: 10 } });
    assert.deepEqual(await totals(), [3, 30, 260, 0.875]);
    await db.shardRecord.deleteMany({ where: { cellKey: key, shardIndex: 1 } });
    assert.deepEqual(await totals(), [2, 20, 60, 0.625]);

    // per-slice perplexity sums the same way, one row per (cell, slice)
    const slices = async () =>
      (await db.cellSliceTotal.findMany({ where: { cellKey: key }, orderBy: { slice: 'asc' } })).map((r) => [
        r.slice,
        r.shards,
        r.nllSum,
        Number(r.tokenCount),
      ]);
    const stat = (shardIndex: number, slice: string, nllSum: number, tokenCount: number) => ({ cellKey: key, shardIndex, slice, nllSum, tokenCount });
    await db.sliceStat.createMany({ data: [stat(0, 'ar_hit', 1.5, 3), stat(0, 'other', 4, 10), stat(2, 'ar_hit', 0.5, 1)] });
    assert.deepEqual(await slices(), [
      ['ar_hit', 2, 2, 4],
      ['other', 1, 4, 10],
    ]);
    await db.sliceStat.updateMany({ where: { cellKey: key, slice: 'other' }, data: { nllSum: 6 } });
    await db.sliceStat.deleteMany({ where: { cellKey: key, shardIndex: 2 } });
    assert.deepEqual(await slices(), [
      ['ar_hit', 1, 1.5, 3],
      ['other', 1, 6, 10],
    ]);
    await db.cell.delete({ where: { key } });
    assert.equal(await totals(), null);
    assert.deepEqual(await slices(), []);
  });
});
