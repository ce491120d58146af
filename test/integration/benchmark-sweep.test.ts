// The prefill benchmark as grid cells on the embedded stack: model-level points (debug LMs) and a
// kernel-level operator, each timed beside the attention baseline, stored in Postgres, and used
// as the Pareto frontier's throughput axis. CPU timings here prove the path, not the speed.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
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
    });
    // 6 benchmark cells x 2 points x (measured + baseline)
    assert.equal(rows.length, 6 * 2 * 2);
    for (const r of rows) {
      assert.ok(r.seconds > 0 && r.minSeconds! > 0 && r.minSeconds! <= r.seconds, JSON.stringify(r));
      assert.ok(r.runs! >= 10);
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

    const report = await loadSweepReport(stack.db, sweepId);
    assert.equal(report.benchmarks.length, 6 * 2);
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
  });
});
