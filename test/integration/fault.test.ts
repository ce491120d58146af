// Fault tolerance: the Python worker is killed with SIGKILL in the middle of a sweep and a new one
// is started; the sweep completes with every cell and example recorded exactly once.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PYTHON_ACTIVITIES } from '../../workflows/contract';
import { startSweep } from '../../workers/lib/sweeps';
import { tableCounts, testStack } from '../helpers/fixtures';
import { activityStats } from '../helpers/history';

const SPEC = `
name: it-fault
models: [zoo-based-tiny, zoo-attn-tiny]
tasks:
  - name: synthetic_doc_qa
    params: { numExamples: 24, seed: 3 }
strategies: [default, jrt_prompt]
generation: { maxNewTokens: 2, batchSize: 2 }
execution: { shardSize: 4, window: 2, device: cpu, heartbeatTimeoutSeconds: 3 }
`;

describe('SIGKILL of the Python worker mid-sweep', { timeout: 600_000 }, () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  before(async () => {
    stack = await testStack({ pythonWorkers: 1 });
  });
  after(async () => {
    await stack?.stop();
  });

  it('completes with no lost and no duplicate rows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'twice-fault-'));
    const specFile = join(dir, 'fault.yaml');
    writeFileSync(specFile, SPEC);
    const { handle } = await startSweep(stack.client, specFile);

    // wait until some shards are recorded and the worker is busy with more, then kill it
    const deadline = Date.now() + 120_000;
    while ((await stack.db.shardRecord.count()) < 3) {
      assert.ok(Date.now() < deadline, 'no shard was recorded within 2 minutes');
      await new Promise((r) => setTimeout(r, 100));
    }
    const victim = stack.pythonWorkers[0]!.process;
    const gone = new Promise((r) => victim.once('exit', r));
    assert.ok(victim.kill('SIGKILL'));
    await gone;
    const recordedAtKill = await stack.db.shardRecord.count();
    assert.ok(recordedAtKill < 12, `the sweep was nearly over when the worker died (${recordedAtKill}/12 shards)`);

    const replacement = stack.startPythonWorker();
    await replacement.ready;
    const result = await handle.result();
    assert.equal(result.status, 'completed', JSON.stringify(result.failures));

    // 2 models x 2 strategies; 24 examples in 6 shards of 4
    const counts = await tableCounts(stack.db);
    assert.equal(counts.cells, 4);
    assert.equal(counts.shards, 24);
    assert.equal(counts.examples, 96);
    assert.equal(counts.throughput, 24);
    for (const c of await stack.db.cell.findMany({ include: { examples: { select: { exampleId: true } } } })) {
      assert.equal(c.status, 'done');
      assert.deepEqual(
        c.examples.map((e) => e.exampleId).sort((a, b) => a - b),
        [...Array(24).keys()],
      );
    }
    const stats = await activityStats(stack.client, handle.workflowId);
    // the shard that was running when the worker died was retried on the new worker
    assert.ok(stats.maxAttempt >= 2, `expected a retried shard, max attempt was ${stats.maxAttempt}`);
    assert.ok(stats.scheduled[PYTHON_ACTIVITIES.runShard]! >= 24);
  });
});
