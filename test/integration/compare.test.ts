// Comparing two sweeps on real PostgreSQL: cells matched by slot across different keys, paired
// counts exact, a planted flip found significant after correction, noise not, reused cells and
// slots present on one side only reported as such.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { compareSweeps, flippedExamples, regressions } from '../../workers/lib/compare';
import { mcnemarExact } from '../../workflows/stats';
import { testPostgres } from '../helpers/fixtures';

type Pg = Awaited<ReturnType<typeof testPostgres>>;

async function sweep(
  db: Pg['db'],
  id: string,
  cells: Array<{ key: string; model: string; task?: string; params?: object; scores: number[]; reused?: boolean }>,
) {
  await db.sweep.create({
    data: { id, name: 'nightly', specFile: 'specs/x.yaml', specYaml: 'x: 1', spec: {}, specDigest: 'd', workflowId: `wf-${id}`, status: 'completed' },
  });
  for (const c of cells) {
    if (!(await db.cell.findUnique({ where: { key: c.key } }))) {
      await db.cell.create({
        data: {
          key: c.key,
          modelName: c.model,
          modelRevision: c.key,
          modelFamily: 'based',
          dtype: 'float32',
          taskName: c.task ?? 'mqar',
          taskVersion: 1,
          taskParams: c.params ?? { numExamples: c.scores.length },
          taskDataDigest: 'dd',
          strategyName: 'default',
          strategyVersion: 1,
          strategyParams: {},
          generation: {},
          scorer: { name: 'contains', version: 1 },
          numExamples: c.scores.length,
          numShards: 1,
          status: 'done',
        },
      });
      await db.exampleResult.createMany({
        data: c.scores.map((score, exampleId) => ({
          cellKey: c.key,
          exampleId,
          shardIndex: 0,
          promptDigest: 'p',
          prediction: `p${exampleId}-${score}`,
          gold: ['g'],
          score,
          promptTokens: 10,
          generatedTokens: 1,
        })),
      });
    }
    await db.sweepCell.create({ data: { sweepId: id, cellKey: c.key, reused: c.reused ?? false } });
  }
}

// 200 examples each. Model "drop": 40 right-to-wrong flips and 2 the other way. Model "noise":
// 6 flips each way. Model "same": the very cell reused. Model "gone" and "new": one side only.
const n = 200;
const base = (right: number) => Array.from({ length: n }, (_, i) => (i < right ? 1 : 0));
const dropAfter = base(150).map((s, i) => (i < 40 ? 0 : i >= 150 && i < 152 ? 1 : s));
const noiseAfter = base(100).map((s, i) => (i < 6 ? 0 : i >= 100 && i < 106 ? 1 : s));

describe('compareSweeps', () => {
  let pg: Pg;
  before(async () => {
    pg = await testPostgres();
    await sweep(pg.db, 'night-1', [
      { key: 'drop-1', model: 'drop', scores: base(150) },
      { key: 'noise-1', model: 'noise', scores: base(100) },
      { key: 'same', model: 'same', scores: base(120) },
      { key: 'gone', model: 'gone', scores: base(10) },
      { key: 'bench-1', model: 'drop', task: 'prefill_throughput', params: {}, scores: [0] },
    ]);
    await sweep(pg.db, 'night-2', [
      { key: 'drop-2', model: 'drop', scores: dropAfter },
      { key: 'noise-2', model: 'noise', scores: noiseAfter },
      { key: 'same', model: 'same', scores: base(120), reused: true },
      { key: 'new', model: 'new', scores: base(10) },
      { key: 'bench-2', model: 'drop', task: 'prefill_throughput', params: {}, scores: [0] },
    ]);
  });
  after(async () => pg?.stop());

  it('matches cells by slot and counts the paired outcomes exactly', async () => {
    const c = await compareSweeps(pg.db, 'night-1', 'night-2');
    assert.deepEqual(
      c.cells.map((x) => x.model),
      ['drop', 'noise', 'same'],
    );
    const drop = c.cells[0]!;
    assert.deepEqual(drop.counts, { both: 110, onlyA: 40, onlyB: 2, neither: 48 });
    assert.equal(drop.n, n);
    assert.equal(drop.baseAccuracy, 150 / n);
    assert.equal(drop.otherAccuracy, 112 / n);
    assert.equal(drop.pValue, mcnemarExact(40, 2));
    assert.ok(drop.difference.hi < 0, 'the paired interval excludes 0');
    const noise = c.cells[1]!;
    assert.deepEqual(noise.counts, { both: 94, onlyA: 6, onlyB: 6, neither: 94 });
    assert.equal(noise.pValue, 1);
    const same = c.cells[2]!;
    assert.equal(same.sameKey, true);
    assert.equal(same.counts.onlyA + same.counts.onlyB, 0);
    assert.deepEqual(c.onlyInBase, ['gone · mqar · default']);
    assert.deepEqual(c.onlyInOther, ['new · mqar · default']);
  });

  it('flags exactly the planted regression after Holm correction', async () => {
    const c = await compareSweeps(pg.db, 'night-1', 'night-2');
    assert.equal(c.cells[0]!.adjustedP, Math.min(1, 3 * c.cells[0]!.pValue));
    assert.deepEqual(
      regressions(c, 0.05).map((x) => x.model),
      ['drop'],
    );
    // the other way round the drop is an improvement, not a regression
    assert.deepEqual(regressions(await compareSweeps(pg.db, 'night-2', 'night-1'), 0.05), []);
    assert.throws(() => regressions(c, 0), /alpha must be in \(0, 1\), got 0/);
  });

  it('lists the flipped examples a page at a time', async () => {
    const first = await flippedExamples(pg.db, 'drop-1', 'drop-2', { limit: 5, offset: 0 });
    assert.equal(first.total, 42);
    assert.deepEqual(
      first.examples.map((e) => e.exampleId),
      [0, 1, 2, 3, 4],
    );
    assert.ok(first.examples.every((e) => e.toWrong && e.basePrediction === `p${e.exampleId}-1` && e.otherPrediction === `p${e.exampleId}-0`));
    const last = await flippedExamples(pg.db, 'drop-1', 'drop-2', { limit: 5, offset: 40 });
    assert.deepEqual(
      last.examples.map((e) => [e.exampleId, e.toWrong]),
      [
        [150, false],
        [151, false],
      ],
    );
    await assert.rejects(flippedExamples(pg.db, 'drop-1', 'drop-2', { limit: 0, offset: 0 }), /limit must be an integer in \[1, 1000\], got 0/);
  });

  it('pairs only the examples both cells have, by the same definition of correct as the grid', async () => {
    // a: examples 0..5, b: 2..9 (ids 0, 1 and 6..9 are one side only); 0.5 is correct, 0.49 is not
    const cell = async (key: string, scores: Array<[number, number]>) => {
      await pg.db.cell.create({
        data: {
          key,
          modelName: 'partial',
          modelRevision: key,
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
          numExamples: 10,
          numShards: 1,
          status: 'done',
        },
      });
      await pg.db.exampleResult.createMany({
        data: scores.map(([exampleId, score]) => ({
          cellKey: key,
          exampleId,
          shardIndex: 0,
          promptDigest: 'p',
          prediction: `${score}`,
          gold: ['g'],
          score,
          promptTokens: 1,
          generatedTokens: 1,
        })),
      });
    };
    await cell('partial-a', [
      [0, 1],
      [1, 0],
      [2, 0.5],
      [3, 0.49],
      [4, 1],
      [5, 0],
    ]);
    await cell('partial-b', [
      [2, 0.49],
      [3, 0.5],
      [4, 1],
      [5, 0],
      [6, 1],
      [7, 1],
      [8, 0],
      [9, 1],
    ]);
    await pg.db.sweep.createMany({
      data: ['partial-1', 'partial-2'].map((id) => ({ id, name: 'partial', specFile: 'f', specYaml: 'x', spec: {}, specDigest: 'd', workflowId: id })),
    });
    await pg.db.sweepCell.createMany({
      data: [
        { sweepId: 'partial-1', cellKey: 'partial-a' },
        { sweepId: 'partial-2', cellKey: 'partial-b' },
      ],
    });
    const [x] = (await compareSweeps(pg.db, 'partial-1', 'partial-2')).cells;
    assert.deepEqual(x!.counts, { both: 1, onlyA: 1, onlyB: 1, neither: 1 });
    assert.equal(x!.n, 4);
    const grid = await pg.db.cellScore.findUniqueOrThrow({ where: { cellKey: 'partial-a' } });
    assert.equal(grid.correct, 3, 'the grid counts 1, 0.5 and 1 as correct, as the comparison does');
    const flips = await flippedExamples(pg.db, 'partial-a', 'partial-b', { limit: 10, offset: 0 });
    assert.deepEqual(
      flips.examples.map((e) => [e.exampleId, e.toWrong]),
      [
        [2, true],
        [3, false],
      ],
    );
    const past = await flippedExamples(pg.db, 'partial-a', 'partial-b', { limit: 10, offset: 10 });
    assert.deepEqual(past, { total: 2, examples: [] });
    assert.deepEqual(await flippedExamples(pg.db, 'partial-a', 'no-such-cell', { limit: 10, offset: 0 }), { total: 0, examples: [] });
  });

  it('names a sweep that does not exist', async () => {
    await assert.rejects(compareSweeps(pg.db, 'night-1', 'night-9'), /no sweep "night-9"/);
  });
});
