// Issue 11 item 2: two sweeps of one spec started at once compute every shared cell once. The
// sweep that claims a cell runs it; the other waits for it, says so in its progress, and reuses
// the result. Before, both ran every shard (128 shard executions for 64 shards).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PYTHON_ACTIVITIES } from '../../workflows/contract';
import { sweepProgressQuery } from '../../workflows/messages';
import { statusLine, startSweep } from '../../workers/lib/sweeps';
import { tableCounts, testStack } from '../helpers/fixtures';
import { activityStats } from '../helpers/history';

const SPEC = `
name: it-concurrent
models: [zoo-attn-tiny, zoo-based-tiny]
tasks: [{ name: mqar, params: { numExamples: 16, numKvPairs: 4, seed: 11 } }]
strategies: [default]
generation: { maxNewTokens: 2, batchSize: 4 }
execution: { shardSize: 4, window: 2, device: cpu }
`;

describe('two sweeps of one spec at once', { timeout: 600_000 }, () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  before(async () => {
    stack = await testStack({ pythonWorkers: 1 });
  });
  after(async () => {
    await stack?.stop();
  });

  it('execute each shard once, and the waiting sweep says on which sweep it waits', async () => {
    const specFile = join(mkdtempSync(join(tmpdir(), 'twice-concurrent-')), 'c.yaml');
    writeFileSync(specFile, SPEC);
    const [a, b] = await Promise.all([startSweep(stack.client, specFile), startSweep(stack.client, specFile)]);
    const lines = new Set<string>();
    let ended = false;
    const results = Promise.all([a.handle.result(), b.handle.result()]).finally(() => (ended = true));
    while (!ended) {
      for (const s of [a, b]) {
        const p = await s.handle.query(sweepProgressQuery).catch(() => null);
        if (p && Object.keys(p.waitingOn).length) lines.add(statusLine(p));
      }
      await Promise.race([results.catch(() => undefined), new Promise((r) => setTimeout(r, 200))]);
    }
    const [ra, rb] = await results;
    assert.equal(ra.status, 'completed', JSON.stringify(ra.failures));
    assert.equal(rb.status, 'completed', JSON.stringify(rb.failures));

    // 2 cells of 16 examples in shards of 4: 8 shards, each run once over both sweeps
    const runs = await Promise.all([a, b].map((s) => activityStats(stack.client, s.handle.workflowId)));
    const executed = runs.reduce((n, r) => n + (r.scheduled[PYTHON_ACTIVITIES.runShard] ?? 0), 0);
    assert.equal(executed, 8, `shard executions: ${runs.map((r) => r.scheduled[PYTHON_ACTIVITIES.runShard] ?? 0).join(' + ')}`);
    const counts = await tableCounts(stack.db);
    assert.equal(counts.shards, 8);
    assert.equal(counts.examples, 32);
    assert.ok(
      [...lines].some((l) => l.includes(`waiting on sweep ${a.sweepId}`) || l.includes(`waiting on sweep ${b.sweepId}`)),
      `no progress line said which sweep it waited on: ${[...lines].join(' | ')}`,
    );
    // claims end with their sweeps
    assert.equal(await stack.db.cell.count({ where: { claimedBy: { not: null } } }), 0);
  });
});
