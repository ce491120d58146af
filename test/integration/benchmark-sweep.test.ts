// The prefill benchmark as grid cells on the embedded stack: model-level points (debug LMs) and a
// kernel-level operator, each timed beside the attention baseline, stored in Postgres, and used
// as the Pareto frontier's throughput axis. Every point is timed once per round, a shard per round,
// the rounds of all benchmark cells in turn. CPU timings here prove the path, not the speed.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { markFrontier } from '../../workflows/pareto';
import { medianInterval } from '../../workflows/stats';
import { loadSweepReport, renderTerminal } from '../../workers/lib/report/index';
import { startSweep } from '../../workers/lib/sweeps';
import { testStack } from '../helpers/fixtures';

const SPEC = `
name: it-benchmark
models: [debug-based-bytes, debug-jrt-bytes, op-based-torch]
tasks:
  - { name: prefill_throughput, params: { lengths: [32, 64], batchSizes: [2], runs: 10 } }
  - { name: mqar, params: { numExamples: 4, numKvPairs: 2 } }
strategies: [default, jrt_prompt]
generation: { maxNewTokens: 3, batchSize: 4 }
execution: { shardSize: 8, window: 4, device: cpu }
`;

describe('the prefill benchmark in the grid', { timeout: 600_000 }, () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  before(async () => {
    stack = await testStack({ pythonWorkers: 1 });
  });
  after(async () => {
    await stack?.stop();
  });

  it('stores each point beside its baseline and puts benchmark throughput on the Pareto axis', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'twice-benchmark-'));
    const file = join(dir, 'benchmark.yaml');
    writeFileSync(file, SPEC);
    const { sweepId, handle } = await startSweep(stack.client, file);
    const result = await handle.result();
    assert.equal(result.status, 'completed', JSON.stringify(result.failures));
    // 2 LMs x (benchmark + mqar) x 2 strategies, and the operator's 2 benchmark cells
    assert.equal(result.cells.total, 2 * 2 * 2 + 2);

    const rows = await stack.db.throughputMeasurement.findMany({
      where: { source: { in: ['benchmark', 'benchmark-baseline'] } },
      include: { cell: { select: { modelName: true, strategyName: true } } },
      orderBy: [{ cellKey: 'asc' }, { exampleId: 'asc' }],
    });
    // 6 benchmark cells x 2 points x 10 rounds x (measured + baseline)
    assert.equal(rows.length, 6 * 2 * 10 * 2);
    for (const r of rows) {
      assert.ok(r.seconds > 0 && r.minSeconds === r.seconds, JSON.stringify(r));
      // one timed run per point and round, and it arrives (to the last digit or so: the client
      // reads a float8 array back through its text form)
      assert.equal(r.runs, 1);
      assert.equal(r.runSeconds.length, 1, JSON.stringify(r));
      assert.ok(Math.abs(r.runSeconds[0]! - r.seconds) <= 1e-12 * r.seconds, JSON.stringify(r));
      // round r of a cell is its shard holding examples [2r, 2r + 2)
      assert.equal(r.shardIndex, r.exampleId! - (r.exampleId! % 2), JSON.stringify(r));
      assert.equal(r.tokens, r.batchSize! * r.seqLen!);
      assert.ok(Math.abs(r.tokensPerSecond - r.tokens / r.seconds) < 1e-6 * r.tokensPerSecond);
      assert.equal(r.device, 'cpu');
      assert.equal(typeof (r.versions as Record<string, string>).torch, 'string');
      // JRT-Prompt reads the prompt twice; the baseline always reads it once
      const repeats = r.source === 'benchmark' && r.cell!.strategyName === 'jrt_prompt' ? 2 : 1;
      assert.equal(r.processedLen, repeats * r.seqLen!, `${r.cell!.modelName}/${r.cell!.strategyName}/${r.source}`);
    }
    // no shard-prefill rows for benchmark cells: their timings are the points themselves
    const benchCells = await stack.db.cell.findMany({ where: { taskName: 'prefill_throughput' }, select: { key: true } });
    assert.equal(await stack.db.throughputMeasurement.count({ where: { source: 'shard-prefill', cellKey: { in: benchCells.map((c) => c.key) } } }), 0);
    assert.equal(await stack.db.exampleResult.count({ where: { cellKey: { in: benchCells.map((c) => c.key) } } }), 0);

    // every round of every benchmark cell is a shard, and they ran round-major: round 1 of all
    // six cells before round 2 of any
    const benchShards = await stack.db.shardRecord.findMany({
      where: { cellKey: { in: benchCells.map((c) => c.key) } },
      orderBy: { recordedAt: 'asc' },
      select: { shardIndex: true, cellKey: true },
    });
    assert.equal(benchShards.length, 6 * 10);
    const roundsInOrder = benchShards.map((s) => s.shardIndex / 2);
    assert.ok(
      roundsInOrder.every((round, i) => i === 0 || round >= roundsInOrder[i - 1]! - 1),
      `rounds out of order: ${roundsInOrder.join(' ')}`,
    );
    // the worker kept every model loaded: one load per model across all the rounds
    const report = await loadSweepReport(stack.db, sweepId);
    assert.equal(report.execution.modelLoads, 3, JSON.stringify(report.execution));
    // one row per point, its median and interval over the ten rounds
    assert.equal(report.benchmarks.length, 6 * 2);
    for (const b of report.benchmarks) {
      assert.equal(b.runSeconds?.length, 10, JSON.stringify(b));
      assert.ok(Math.abs(medianInterval(b.runSeconds!).estimate - b.seconds) <= 1e-12 * b.seconds, JSON.stringify(b));
    }
    assert.equal(report.paretoAxis, 'benchmark');
    assert.deepEqual(report.pareto.map((p) => `${p.model}/${p.strategy}`).sort(), [
      'debug-based-bytes/default',
      'debug-based-bytes/jrt_prompt',
      'debug-jrt-bytes/default',
      'debug-jrt-bytes/jrt_prompt',
    ]);
    assert.ok(report.cells.every((c) => c.task === 'mqar'));
    const text = renderTerminal(report);
    assert.match(text, /Prefill benchmark/);
    assert.match(text, /prefill tok\/s \(benchmark\)/);

    // The intervals come from the stored runs: recomputed here from the rows alone (prompt tokens
    // over the summed ends of each row's interval of its median), the frontier's settled marks
    // are the report's.
    assert.equal(report.paretoInterval, 'median-ci');
    assert.match(text, /Interval: 95% interval of the median run/);
    const fromRows = report.pareto.map((p) => {
      const own = rows.filter((r) => r.source === 'benchmark' && r.cell!.modelName === p.model && r.cell!.strategyName === p.strategy);
      assert.equal(own.length, 2 * 10, `${p.model}/${p.strategy}`);
      const lengths = [...new Set(own.map((r) => r.seqLen!))];
      const tokens = lengths.reduce((s, n) => s + own.find((r) => r.seqLen === n)!.tokens, 0);
      const ends = lengths.map((n) => medianInterval(own.filter((r) => r.seqLen === n).flatMap((r) => r.runSeconds)));
      const lo = tokens / ends.reduce((s, e) => s + e.hi, 0);
      const hi = tokens / ends.reduce((s, e) => s + e.lo, 0);
      assert.ok(p.interval === 'median-ci' && Math.abs(p.throughputLo - lo) <= 1e-9 * lo && Math.abs(p.throughputHi - hi) <= 1e-9 * hi, JSON.stringify(p));
      assert.ok(p.throughputLo <= p.throughput && p.throughput <= p.throughputHi, JSON.stringify(p));
      return { model: p.model, strategy: p.strategy, accuracy: p.accuracy, throughput: p.throughput, throughputLo: lo, throughputHi: hi };
    });
    assert.deepEqual(
      markFrontier(fromRows).map((p) => [p.model, p.strategy, p.onFrontier, p.settled]),
      report.pareto.map((p) => [p.model, p.strategy, p.onFrontier, p.settled]),
    );

    // A sweep recorded before per-run seconds were kept falls back to the median-to-fastest range
    // and says so.
    const benchKeys = benchCells.map((c) => c.key);
    assert.equal(await stack.db.$executeRaw`UPDATE throughput_measurements SET run_seconds = NULL WHERE cell_key = ANY(${benchKeys})`, rows.length);
    const older = await loadSweepReport(stack.db, sweepId);
    assert.equal(older.paretoInterval, 'fastest-run');
    assert.ok(older.pareto.every((p) => p.interval === 'fastest-run'));
    assert.deepEqual(
      older.pareto.map((p) => p.throughput),
      report.pareto.map((p) => p.throughput),
    );
    assert.match(renderTerminal(older), /median to fastest run, mirrored \(recorded before per-run timings were kept/);
  });
});
