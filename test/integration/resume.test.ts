// Issue 11 item 1: a cell left partial by one sweep and resumed by another with a different shard
// size is completed example by example: nothing lost, nothing recorded twice, and the sweep calls
// itself completed only once every cell is done. Before, shards were matched by index: the second
// sweep saw "7/5 partial", reported completed, and examples 42-47 were never run.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ORCHESTRATOR_QUEUE } from '../../workflows/contract';
import type { planWorkflow } from '../../workflows/sweep';
import { readSpec, startSweep } from '../../workers/lib/sweeps';
import { testStack } from '../helpers/fixtures';

const spec = (name: string, shardSize: number) => `
name: ${name}
models: [zoo-attn-tiny]
tasks: [{ name: mqar, params: { numExamples: 48, numKvPairs: 8, seed: 404 } }]
strategies: [default]
generation: { maxNewTokens: 2, batchSize: 6 }
execution: { shardSize: ${shardSize}, window: 1, device: cpu }
`;

describe('resuming a cell with another shard size', { timeout: 600_000 }, () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  const dir = mkdtempSync(join(tmpdir(), 'twice-resume-'));
  before(async () => {
    stack = await testStack({ pythonWorkers: 1 });
  });
  after(async () => {
    await stack?.stop();
  });

  it('runs exactly the examples still missing and completes the cell', async () => {
    writeFileSync(join(dir, 'a.yaml'), spec('resume-a', 6));
    writeFileSync(join(dir, 'b.yaml'), spec('resume-b', 10));
    const a = await startSweep(stack.client, join(dir, 'a.yaml'));
    const deadline = Date.now() + 300_000;
    while ((await stack.db.shardRecord.count()) < 3) {
      assert.ok(Date.now() < deadline, 'sweep A recorded no 3 shards within 5 minutes');
      await new Promise((r) => setTimeout(r, 100));
    }
    await a.handle.cancel();
    await assert.rejects(a.handle.result());
    const recordedByA = await stack.db.shardRecord.count();
    assert.ok(recordedByA < 8, `sweep A finished its cell before it was cancelled (${recordedByA}/8 shards)`);

    // the plan counts examples, and cuts only what is missing with B's shard size
    const b = readSpec(join(dir, 'b.yaml'));
    const plan = await stack.client.workflow.execute<typeof planWorkflow>('planWorkflow', {
      taskQueue: ORCHESTRATOR_QUEUE,
      workflowId: 'plan/resume-b',
      args: [{ spec: b.spec }],
    });
    const [cell] = plan.cells;
    assert.equal(cell?.status, 'partial');
    assert.equal(cell?.examplesDone, recordedByA * 6);
    assert.equal(cell?.numShards, recordedByA + Math.ceil((48 - recordedByA * 6) / 10));

    const run = await startSweep(stack.client, b);
    const result = await run.handle.result();
    assert.equal(result.status, 'completed', JSON.stringify(result.failures));
    const stored = await stack.db.cell.findUniqueOrThrow({
      where: { key: cell!.key },
      include: { examples: { select: { exampleId: true } }, shards: true },
    });
    assert.equal(stored.status, 'done');
    assert.deepEqual(
      stored.examples.map((e) => e.exampleId).sort((x, y) => x - y),
      [...Array(48).keys()],
    );
    // the shards cover 0..47 without overlap: A's of 6, then B's of at most 10
    const ranges = stored.shards.map((s) => [s.exampleStart, s.exampleEnd]).sort((x, y) => x[0]! - y[0]!);
    ranges.forEach(([start], i) => assert.equal(start, i === 0 ? 0 : ranges[i - 1]![1]));
    assert.equal(ranges.at(-1)![1], 48);
    assert.ok(ranges.slice(recordedByA).every(([s, e]) => e! - s! <= 10 && e! - s! > 0));
    const sweepB = await stack.db.sweep.findUniqueOrThrow({ where: { id: run.sweepId } });
    assert.equal(sweepB.status, 'completed');
  });
});
