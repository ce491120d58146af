// A whole sweep through the real stack: Temporal dev server, PostgreSQL, the orchestrator worker
// and a Python inference worker on the CPU running the tiny zoo models. Continue-as-new is forced
// often (a low history threshold) so the sweep crosses several runs. Then: the same spec again
// reuses every cell and runs no model; changing one field re-runs only the cells it affects.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { explainNewCells, loadSweepReport } from '../../workers/lib/report/index';
import { PYTHON_ACTIVITIES } from '../../workflows/contract';
import { startSweep } from '../../workers/lib/sweeps';
import { tableCounts, testStack } from '../helpers/fixtures';
import { activityStats } from '../helpers/history';

const spec = (repeats: number) => `
name: it-small
models: [zoo-based-tiny, zoo-attn-tiny]
tasks:
  - name: mqar
    params: { numExamples: 12, numKvPairs: 4, seed: 7 }
strategies: [default, { name: jrt_prompt, params: { repeats: ${repeats} } }]
generation: { maxNewTokens: 2, batchSize: 4 }
execution: { shardSize: 5, window: 2, device: cpu }
`;

describe('a sweep end to end', { timeout: 600_000 }, () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  const dir = mkdtempSync(join(tmpdir(), 'twice-it-'));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  before(async () => {
    stack = await testStack({
      pythonWorkers: 1,
      temporalDynamicConfig: ['limit.historyCount.suggestContinueAsNew=40'],
    });
  });
  after(async () => {
    await stack?.stop();
  });

  it('records every cell and example exactly once, across continue-as-new runs', async () => {
    const { sweepId, handle } = await startSweep(stack.client, file('a.yaml', spec(2)));
    const result = await handle.result();
    assert.equal(result.status, 'completed', JSON.stringify(result.failures));
    assert.ok(result.runs > 1, `expected continue-as-new, got ${result.runs} run(s)`);
    // 2 models x 1 task x 2 strategies; 12 examples in shards of 5 (5, 5, 2)
    assert.deepEqual(await tableCounts(stack.db), {
      sweeps: 1,
      cells: 4,
      sweepCells: 4,
      shards: 12,
      examples: 48,
      slices: await stack.db.sliceStat.count(),
      throughput: 12,
    });
    assert.ok((await stack.db.sliceStat.count()) > 0, 'per-slice perplexity sums were recorded');
    const cells = await stack.db.cell.findMany({ include: { examples: { select: { exampleId: true } } } });
    for (const c of cells) {
      assert.equal(c.status, 'done');
      assert.deepEqual(
        c.examples.map((e) => e.exampleId).sort((a, b) => a - b),
        [...Array(12).keys()],
      );
      assert.ok(c.provenance && typeof c.provenance === 'object' && 'worker' in c.provenance);
    }
    const report = await loadSweepReport(stack.db, sweepId);
    assert.equal(report.cells.length, 4);
    assert.ok(report.cells.every((c) => c.accuracy !== null && c.promptsPerSecond !== null && !c.reused));
    assert.ok(report.pareto.some((p) => p.onFrontier));
    const stats = await activityStats(stack.client, handle.workflowId);
    assert.equal(stats.scheduled[PYTHON_ACTIVITIES.runShard], 12);
    // the continued runs neither register nor claim again: the first run did, in one activity,
    // and claims last until the sweep ends; they read the cells' state instead (and once more at
    // the end)
    assert.equal(stats.runs, result.runs);
    assert.equal(stats.scheduled.registerSweep, 1);
    assert.equal(stats.scheduled.claimCells, undefined);
    assert.equal(stats.scheduled.sweepState, result.runs);
  });

  it('reuses every finished cell when the same spec runs again, running no model', async () => {
    const before = await tableCounts(stack.db);
    const { sweepId, handle } = await startSweep(stack.client, file('b.yaml', spec(2)));
    const result = await handle.result();
    assert.equal(result.status, 'completed');
    assert.equal(result.cells.reused, 4);
    const stats = await activityStats(stack.client, handle.workflowId);
    assert.equal(stats.scheduled[PYTHON_ACTIVITIES.runShard] ?? 0, 0);
    const afterCounts = await tableCounts(stack.db);
    assert.deepEqual({ ...afterCounts, sweeps: 0, sweepCells: 0 }, { ...before, sweeps: 0, sweepCells: 0 });
    assert.equal(afterCounts.sweeps, 2);
    assert.deepEqual(await explainNewCells(stack.db, sweepId), []);
  });

  it('re-runs only the cells a changed field affects, and says why', async () => {
    const { sweepId, handle } = await startSweep(stack.client, file('c.yaml', spec(3)));
    const result = await handle.result();
    assert.equal(result.status, 'completed');
    assert.equal(result.cells.total, 4);
    assert.equal(result.cells.reused, 2);
    const stats = await activityStats(stack.client, handle.workflowId);
    // the two jrt_prompt cells, three shards each
    assert.equal(stats.scheduled[PYTHON_ACTIVITIES.runShard], 6);
    const why = await explainNewCells(stack.db, sweepId);
    assert.equal(why.length, 2);
    for (const line of why) {
      assert.match(line, /\/ mqar \/ jrt_prompt: ran because strategy params \{"repeats":2\} -> \{"repeats":3\}/);
    }
  });

  it('keeps going when one cell fails, and reports it', async () => {
    // set disjointness has no question, so question-first cannot lay out its prompt
    const text = `
name: it-partial
models: [zoo-mamba-tiny]
tasks: [{ name: set_disjointness, params: { numExamples: 6 } }]
strategies: [default, question_first]
generation: { maxNewTokens: 2, batchSize: 4 }
execution: { shardSize: 3, device: cpu }
`;
    const { sweepId, handle } = await startSweep(stack.client, file('e.yaml', text));
    const result = await handle.result();
    assert.equal(result.status, 'failed');
    assert.deepEqual({ total: result.cells.total, done: result.cells.done, failed: result.cells.failed }, { total: 2, done: 1, failed: 1 });
    assert.equal(result.failures.length, 1);
    assert.match(result.failures[0]!.error, /question_first/);
    const report = await loadSweepReport(stack.db, sweepId);
    assert.equal(report.status, 'failed');
    const failed = report.cells.find((c) => c.strategy === 'question_first')!;
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /question_first/);
    assert.equal(report.cells.find((c) => c.strategy === 'default')!.status, 'done');
  });

  it('cancels cleanly: the workflow ends cancelled and the sweep is marked so', async () => {
    const long = spec(2).replace('numExamples: 12', 'numExamples: 400').replace('name: it-small', 'name: it-cancel');
    const { sweepId, handle } = await startSweep(stack.client, file('d.yaml', long));
    const deadline = Date.now() + 60_000;
    while ((await stack.db.shardRecord.count({ where: { cell: { sweeps: { some: { sweepId } } } } })) === 0) {
      assert.ok(Date.now() < deadline, 'no shard recorded within a minute');
      await new Promise((r) => setTimeout(r, 100));
    }
    await handle.cancel();
    await assert.rejects(handle.result(), (err: Error) => err.name === 'WorkflowFailedError' && /cancel/i.test(String(err.cause)));
    assert.equal((await handle.describe()).status.name, 'CANCELLED');
    assert.equal((await stack.db.sweep.findUniqueOrThrow({ where: { id: sweepId } })).status, 'cancelled');
  });
});
