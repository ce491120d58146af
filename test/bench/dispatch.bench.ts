// Dispatch rate (issue 17, orchestration): a 10,000-cell grid (4 debug models x 100 generated
// tasks x 25 strategy settings, one example a cell) on the embedded stack with a no-op GPU worker, so the
// figures are the orchestration's own: the workflow, Temporal round trips and the recording.
//
//   npx tsx test/bench/dispatch.bench.ts [--window 8] [--out docs/measurements/<file>.md]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startSweep } from '../../workers/lib/sweeps';
import { testStack } from '../helpers/fixtures';
import { activityStats } from '../helpers/history';
import { startNoopWorker } from '../helpers/noop-worker';

const { values } = parseArgs({ options: { window: { type: 'string', default: '8' }, tasks: { type: 'string', default: '100' }, out: { type: 'string' } } });
const TASK_COUNT = Number(values.tasks);
const SPEC = `
name: bench-dispatch
models: [debug-attn-bytes, debug-based-bytes, debug-mamba2-bytes, debug-jrt-bytes]
tasks:
${Array.from({ length: TASK_COUNT }, (_, i) => `  - { name: mqar, params: { numExamples: 1, numKvPairs: 4, seed: ${i} } }`).join('\n')}
strategies:
  - default
  - question_first
${Array.from({ length: 7 }, (_, i) => `  - { name: jrt_prompt, params: { repeats: ${i + 2} } }`).join('\n')}
${Array.from({ length: 16 }, (_, i) => `  - { name: few_shot, params: { shots: ${i + 1} } }`).join('\n')}
slices: false
execution: { shardSize: 1, window: ${Number(values.window)}, device: cpu }
`;

const stack = await testStack({ pythonWorkers: 0 });
const lines: string[] = [];
try {
  const stopNoop = await startNoopWorker(stack.temporalAddress, stack.namespace);
  try {
    const dir = mkdtempSync(join(tmpdir(), 'twice-dispatch-'));
    writeFileSync(join(dir, 'dispatch.yaml'), SPEC);
    const started = performance.now();
    const { handle } = await startSweep(stack.client, join(dir, 'dispatch.yaml'));
    const result = await handle.result();
    const wall = (performance.now() - started) / 1000;
    rmSync(dir, { recursive: true, force: true });
    if (result.status !== 'completed') throw new Error(`the dispatch sweep ended ${result.status}`);
    const shards = await stack.db.shardRecord.count();
    const stats = await activityStats(stack.client, handle.workflowId);
    const recordSeconds = (await stack.db.shardRecord.aggregate({ _sum: { recordSeconds: true } }))._sum.recordSeconds ?? 0;
    lines.push(
      `| figure | value |`,
      `| --- | --- |`,
      `| cells | ${result.cells.total} |`,
      `| shards | ${shards} |`,
      `| window | ${values.window} |`,
      `| sweep wall (s) | ${wall.toFixed(1)} |`,
      `| cells/s | ${(result.cells.total / wall).toFixed(1)} |`,
      `| shards/s | ${(shards / wall).toFixed(1)} |`,
      `| run_shard activities | ${stats.scheduled.run_shard ?? 0} |`,
      `| recordShards activities (shards per batch) | ${stats.scheduled.recordShards ?? 0} (${(shards / (stats.scheduled.recordShards ?? 1)).toFixed(1)}) |`,
      `| recording transactions, summed (s) | ${recordSeconds.toFixed(1)} |`,
      `| workflow runs (continue-as-new) | ${stats.runs} |`,
    );
  } finally {
    await stopNoop();
  }
} finally {
  await stack.stop();
}
const text = lines.join('\n');
console.log(text);
if (values.out) writeFileSync(values.out, `${text}\n`);
