// Records a real sweep's Temporal history as run by another commit's workflow code, for the replay
// tests (test/integration/replay.test.ts): a workflow change must let a sweep that was running
// under the old code finish under the new one, and only a history the old code actually wrote
// shows that. The sweep is small (a few one-example cells) and runs on the embedded stack with the
// no-op GPU worker, against this tree's activities; the workflow code is `--ref`'s.
//
// The dev server suggests continue-as-new after 40 events, so the sweep runs several times and
// the continued runs (which carry over, rather than resolve) are captured too, one file each.
//
//   npx tsx scripts/capture-history.ts --ref <git ref> --out test/histories/<name>
//   (writes <name>-run1.json, <name>-run2.json, ...)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../activities/index';
import { LocalPool } from '../activities/pool';
import { readToolchain, repoRoot } from '../workers/lib/paths';
import { startSweep } from '../workers/lib/sweeps';
import { testStack } from '../test/helpers/fixtures';
import { startNoopWorker } from '../test/helpers/noop-worker';

// two models so the model-major order and a pool start are in the history; one example a cell
export const CAPTURE_SPEC = `
name: replay-capture
models: [debug-attn-bytes, debug-based-bytes]
tasks:
  - { name: mqar, params: { numExamples: 2, numKvPairs: 4, seed: 7 } }
strategies: [default, jrt_prompt]
slices: false
execution: { shardSize: 1, window: 2, device: cpu }
`;
const QUEUE = 'twice-replay-capture';

const { values } = parseArgs({ options: { ref: { type: 'string' }, out: { type: 'string' } } });
if (!values.ref || !values.out) {
  console.error('usage: capture-history.ts --ref <git ref> --out <file prefix>');
  process.exit(2);
}

const tree = mkdtempSync(join(tmpdir(), 'twice-capture-'));
const stack = await testStack({ pythonWorkers: 0, temporalDynamicConfig: ['limit.historyCount.suggestContinueAsNew=40'] });
try {
  // the ref's workflows/ (all a workflow bundle may import), resolving packages from this clone
  execFileSync('sh', ['-c', `git archive ${JSON.stringify(values.ref)} workflows | tar -x -C ${JSON.stringify(tree)}`], { cwd: repoRoot });
  symlinkSync(join(repoRoot, 'node_modules'), join(tree, 'node_modules'));
  const connection = await NativeConnection.connect({ address: stack.temporalAddress });
  const worker = await Worker.create({
    connection,
    namespace: stack.namespace,
    taskQueue: QUEUE,
    workflowsPath: join(tree, 'workflows', 'index.ts'),
    activities: createActivities({ db: stack.db, root: repoRoot, pool: new LocalPool(null) }),
  });
  const stopNoop = await startNoopWorker(stack.temporalAddress, stack.namespace);
  try {
    const spec = join(tree, 'capture.yaml');
    writeFileSync(spec, CAPTURE_SPEC);
    const history = await worker.runUntil(async () => {
      const { handle } = await startSweep(stack.client, spec, { taskQueue: QUEUE });
      const result = await handle.result();
      if (result.status !== 'completed') throw new Error(`the capture sweep ended ${result.status}`);
      return { workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
    });
    // the Temporal CLI writes the JSON form that Temporal's tools read; each run's last event
    // names the run it continued as
    const cli = readToolchain().temporalCli;
    if (!cli) throw new Error('no Temporal CLI in .twice/toolchain.json: run `node scripts/bootstrap.mjs`');
    let runId: string | undefined = history.runId;
    for (let run = 1; runId; run++) {
      const json = execFileSync(
        cli,
        [
          'workflow',
          'show',
          '--address',
          stack.temporalAddress,
          '--namespace',
          stack.namespace,
          '--workflow-id',
          history.workflowId,
          '--run-id',
          runId,
          '--output',
          'json',
        ],
        { encoding: 'utf8', maxBuffer: 1 << 26 },
      );
      const file = `${values.out}-run${run}.json`;
      writeFileSync(file, json.endsWith('\n') ? json : `${json}\n`);
      const { events } = JSON.parse(json) as { events: Array<{ workflowExecutionContinuedAsNewEventAttributes?: { newExecutionRunId: string } }> };
      console.log(`${file}: ${events.length} events of ${values.ref}'s sweepWorkflow`);
      runId = events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
    }
  } finally {
    await stopNoop();
    await connection.close();
  }
} finally {
  await stack.stop();
  rmSync(tree, { recursive: true, force: true });
}
