// The cell drill-down's pages on real PostgreSQL: every page and every page of wrong examples,
// read off the cell's bitmaps, equal the same page computed from the rows themselves, including
// gaps in the example ids and pages past the end.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { cellExamples } from '../../workers/lib/web/data';
import { testPostgres } from '../helpers/fixtures';

describe('cell example pages', () => {
  let pg: Awaited<ReturnType<typeof testPostgres>>;
  // ids 0..299 without every seventh, scores cycling through 0, 0.25, 0.5, 0.75, 1
  const rows = Array.from({ length: 300 }, (_, id) => ({ id, score: (id % 5) / 4 })).filter((r) => r.id % 7 !== 3);
  before(async () => {
    pg = await testPostgres();
    await pg.db.cell.create({
      data: {
        key: 'k',
        modelName: 'm',
        modelRevision: 'r',
        modelFamily: 'based',
        dtype: 'float32',
        taskName: 'mqar',
        taskVersion: 1,
        taskParams: {},
        taskDataDigest: 'dd',
        strategyName: 'default',
        strategyVersion: 1,
        strategyParams: {},
        generation: {},
        scorer: { name: 'contains', version: 1 },
        numExamples: 300,
        numShards: 3,
        status: 'done',
      },
    });
    // three shards, the last first, as concurrent shards may land
    for (const shard of [2, 0, 1]) {
      await pg.db.exampleResult.createMany({
        data: rows
          .filter((r) => Math.floor(r.id / 100) === shard)
          .map((r) => ({
            cellKey: 'k',
            exampleId: r.id,
            shardIndex: shard,
            promptDigest: `d${r.id}`,
            prediction: `p${r.id}`,
            gold: ['g'],
            score: r.score,
            promptTokens: 3,
            generatedTokens: 1,
          })),
      });
    }
  });
  after(async () => pg?.stop());

  it('pages all examples and the wrong ones exactly as the rows say', async () => {
    for (const wrongOnly of [false, true]) {
      const expected = rows.filter((r) => !wrongOnly || r.score < 0.5);
      for (const [offset, limit] of [
        [0, 50],
        [37, 13],
        [expected.length - 5, 50],
        [expected.length, 10],
        [1000, 10],
      ] as const) {
        const page = await cellExamples(pg.db, 'k', { wrongOnly, offset, limit });
        assert.equal(page.total, expected.length);
        assert.deepEqual(
          page.examples.map((e) => [e.exampleId, e.score, e.correct, e.prediction]),
          expected.slice(offset, offset + limit).map((r) => [r.id, r.score, r.score >= 0.5, `p${r.id}`]),
          `wrongOnly=${wrongOnly} offset=${offset} limit=${limit}`,
        );
      }
    }
  });

  it('answers an empty page for a cell with no examples', async () => {
    assert.deepEqual(await cellExamples(pg.db, 'none', { wrongOnly: false, offset: 0, limit: 10 }), { total: 0, offset: 0, limit: 10, examples: [] });
  });
});
