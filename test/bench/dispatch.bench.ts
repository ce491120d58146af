// Dispatch rate (issue 17, orchestration): a 10,000-cell grid (4 debug models x 100 generated
// tasks x 25 strategy settings, one example a cell) on the embedded stack with a no-op GPU worker, so the
// figures are the orchestration's own: the workflow, Temporal round trips and the recording.
// Bounded: a sweep still running after --seconds is terminated, and the rates are those of the
// part that ran (shards recorded over the time from registration to the last recording).
//
//   npx tsx test/bench/dispatch.bench.ts [--window 8] [--tasks 100] [--seconds 900] [--out docs/measurements/<file>.md]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSweep } from '../../workers/lib/sweeps';
import { testStack } from '../helpers/fixtures';
import { activityStats, activityTimeline } from '../helpers/history';
import { startNoopWorker } from '../helpers/noop-worker';

const { values } = parseArgs({
  options: {
    window: { type: 'string', default: '8' },
    tasks: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '900' },
    out: { type: 'string' },
  },
});
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
    const started = Date.now();
    const { handle } = await startSweep(stack.client, join(dir, 'dispatch.yaml'));
    // the bound's timer is cleared when the sweep ends first, or it keeps the process alive
    const bound = new AbortController();
    const finished = await Promise.race([handle.result(), sleep(Number(values.seconds) * 1000, null, { signal: bound.signal }).catch(() => null)]);
    bound.abort();
    const wall = (Date.now() - started) / 1000;
    rmSync(dir, { recursive: true, force: true });
    if (finished === null) await handle.terminate(`dispatch bench: ${values.seconds} s bound reached`);
    else if (finished.status !== 'completed') throw new Error(`the dispatch sweep ended ${finished.status}`);
    const [row] = await stack.db.$queryRaw<Array<{ shards: number; first: Date | null; last: Date | null; record: number | null }>>`
      SELECT count(*)::int AS shards, min(recorded_at) AS first, max(recorded_at) AS last, sum(record_seconds)::float8 AS record FROM shard_records`;
    const cellsDone = await stack.db.cell.count({ where: { status: 'done' } });
    const cellsTotal = await stack.db.sweepCell.count();
    const stats = await activityStats(stack.client, handle.workflowId);
    // the first run holds the registration of the grid
    const firstRun = await activityTimeline(stack.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId));
    const shards = row?.shards ?? 0;
    // from the first recording to the last: the steady dispatch, without resolving and registering
    const span = row?.first && row.last ? (row.last.getTime() - row.first.getTime()) / 1000 : 0;
    const firstAfter = row?.first ? (row.first.getTime() - started) / 1000 : NaN;
    lines.push(
      `| figure | value |`,
      `| --- | --- |`,
      `| grid (cells) | ${cellsTotal} |`,
      `| finished | ${finished === null ? `no: terminated after ${values.seconds} s` : 'yes'} |`,
      `| cells done | ${cellsDone} |`,
      `| shards recorded | ${shards} |`,
      `| window | ${values.window} |`,
      `| wall (s) | ${wall.toFixed(1)} |`,
      `| resolve + register (s, first run's registerSweep) | ${(firstRun['registerSweep running (s)'] ?? NaN).toFixed(1)} |`,
      `| first shard recorded after (s) | ${firstAfter.toFixed(1)} |`,
      `| cells/s over the wall | ${(cellsDone / wall).toFixed(1)} |`,
      `| shards/s over the wall | ${(shards / wall).toFixed(1)} |`,
      `| shards/s from first to last recording | ${span > 0 ? (shards / span).toFixed(1) : 'n/a'} |`,
      `| run_shard activities | ${stats.scheduled.run_shard ?? 0} |`,
      `| recordShards activities (shards per batch) | ${stats.scheduled.recordShards ?? 0} (${(shards / (stats.scheduled.recordShards || 1)).toFixed(1)}) |`,
      `| recording transactions, summed (s) | ${(row?.record ?? 0).toFixed(1)} |`,
      `| registerSweep / claimCells / sweepState activities | ${stats.scheduled.registerSweep ?? 0} / ${stats.scheduled.claimCells ?? 0} / ${stats.scheduled.sweepState ?? 0} |`,
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
