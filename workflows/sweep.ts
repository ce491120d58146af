// sweepWorkflow: resolve the spec, expand it into content-addressed cells, run every unfinished
// shard through a bounded sliding window (GPU queue, Python worker), record each result exactly
// once (TypeScript activity, Postgres), and continue-as-new before the history grows large.
// planWorkflow resolves and expands the same way, so `twice plan` shows the keys a run will use.
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ContinueAsNew,
  allHandlersFinished,
  condition,
  continueAsNew,
  isCancellation,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type * as dbActivities from '../activities/db';
import type * as catalogActivities from '../activities/catalog';
import { TASKS, generatedExampleCount, type TaskName } from './catalog';
import {
  GPU_QUEUE,
  PYTHON_ACTIVITIES,
  type DescribeTaskInput,
  type DescribeTaskOutput,
  type RunShardInput,
  type RunShardOutput,
} from './contract';
import { SweepPool } from './sweep-pool';
import {
  sweepProgressQuery,
  type PlanResult,
  type PlanWorkflowInput,
  type SweepProgress,
  type SweepResult,
  type SweepWorkflowInput,
} from './messages';
import {
  digestOf,
  expandCells,
  shardsOf,
  skippedPairs,
  type Cell,
  type ResolvedSweep,
  type Shard,
  type SweepSpec,
} from './sweep-spec';

type TsActivities = dbActivities.DbActivities & catalogActivities.CatalogActivities;

const local = proxyActivities<TsActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10, nonRetryableErrorTypes: ['InvalidSpec', 'MalformedShardResult'] },
});

// Python activities are typed from the contract; their names are set on the Python side.
interface PythonActivities {
  [PYTHON_ACTIVITIES.runShard]: (input: RunShardInput) => Promise<RunShardOutput>;
  [PYTHON_ACTIVITIES.describeTask]: (input: DescribeTaskInput) => Promise<DescribeTaskOutput>;
}

function gpuActivities(spec: SweepSpec, taskQueue: string) {
  return proxyActivities<PythonActivities>({
    taskQueue,
    startToCloseTimeout: `${spec.execution.shardTimeoutSeconds} seconds`,
    // a worker that dies (OOM, preemption, SIGKILL) is noticed within this time; the shard is
    // then retried on another worker
    heartbeatTimeout: `${spec.execution.heartbeatTimeoutSeconds} seconds`,
    retry: {
      initialInterval: '2s',
      backoffCoefficient: 2,
      maximumInterval: '2 minutes',
      maximumAttempts: spec.execution.maxAttempts,
      // ModelLoadFailed for a missing checkpoint is raised non-retryable by the worker itself
      nonRetryableErrorTypes: ['InvalidShard', 'TaskFailed'],
    },
  });
}

// Counting a dataset's examples and hashing its bytes sends no heartbeats; it gets a plain timeout.
const describe = proxyActivities<PythonActivities>({
  taskQueue: GPU_QUEUE,
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['InvalidShard', 'TaskFailed'] },
});

async function resolveSweep(spec: SweepSpec): Promise<ResolvedSweep> {
  const models = await local.resolveModels({ names: spec.models, dtype: spec.execution.dtype ?? null });
  const tasks = await Promise.all(
    spec.tasks.map(async (t) => {
      const def = TASKS[t.name as TaskName];
      const ref = { name: t.name, version: def.version, params: t.params };
      if (def.synthetic) {
        // generated from a seed: the parameters are the data
        return { ...ref, numExamples: generatedExampleCount(t.name as TaskName, t.params), dataDigest: digestOf(ref) };
      }
      // real datasets live where the workers run; ask one of them
      const facts = await describe[PYTHON_ACTIVITIES.describeTask]({ task: ref });
      return { ...ref, numExamples: facts.numExamples, dataDigest: facts.dataDigest };
    }),
  );
  return { spec, specDigest: digestOf(spec), models, tasks };
}

function errorMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return errorMessage(err.cause);
  return err instanceof Error ? err.message : String(err);
}

export async function sweepWorkflow(input: SweepWorkflowInput): Promise<SweepResult> {
  const { sweepId, spec } = input;
  const progress: SweepProgress = {
    sweepId,
    phase: 'resolving',
    cells: { total: 0, reused: 0, done: 0, failed: 0 },
    shards: { total: 0, done: 0, failed: 0, inFlight: 0 },
    examples: { total: 0, done: 0 },
    currentModel: null,
    startedAt: input.continued?.startedAt ?? Date.now(),
    runs: (input.continued?.runs ?? 0) + 1,
  };
  setHandler(sweepProgressQuery, () => ({ ...progress, pool: sweepPool?.line ?? null }));
  // GPU workers for this sweep (workflows/sweep-pool.ts); removed at the end, kept across continue-as-new
  let sweepPool: SweepPool | null = null;

  try {
    const resolved = input.continued?.resolved ?? (await resolveSweep(spec));
    const cells = expandCells(resolved);
    const state = await local.registerSweep({
      sweepId,
      workflowId: workflowInfo().workflowId,
      specFile: input.specFile,
      specYaml: input.specYaml,
      resolved,
      gitSha: input.gitSha,
      retryFailed: !input.continued,
    });
    // failures carry over continue-as-new, so the final result names every failed cell
    const failures = new Map((input.continued?.failures ?? []).map((f) => [f.cellKey, f.error]));
    const failedCells = new Set(failures.keys());
    const done = new Set(state.doneCells);

    // the shards still to run, in model-major order; a continued run recomputes this from the
    // database, so nothing has to be carried through continue-as-new but the resolution
    const pending: Array<{ cell: Cell; shard: Shard }> = [];
    for (const cell of cells) {
      const all = shardsOf(cell, spec.execution.shardSize);
      progress.shards.total += all.length;
      progress.examples.total += cell.numExamples;
      if (done.has(cell.key)) {
        progress.shards.done += all.length;
        progress.examples.done += cell.numExamples;
        continue;
      }
      if (failedCells.has(cell.key)) continue;
      const recorded = new Set(state.doneShards[cell.key] ?? []);
      for (const shard of all) {
        if (recorded.has(shard.shardIndex)) {
          progress.shards.done += 1;
          progress.examples.done += shard.exampleEnd - shard.exampleStart;
        } else {
          pending.push({ cell, shard });
        }
      }
    }
    progress.cells = {
      total: cells.length,
      reused: state.reusedCells.length,
      done: state.doneCells.length,
      failed: failedCells.size,
    };
    progress.phase = 'running';

    const pendingByModel: Record<string, number> = {};
    for (const { cell } of pending) pendingByModel[cell.model.name] = (pendingByModel[cell.model.name] ?? 0) + 1;
    sweepPool = new SweepPool(sweepId, workflowInfo().workflowId, spec, resolved.models.map((m) => m.name));
    await sweepPool.start(pendingByModel);
    const pool = sweepPool;
    const queues = new Map<string, ReturnType<typeof gpuActivities>>();
    const gpuFor = (model: string) => {
      const queue = pool.queueFor(model);
      if (!queues.has(queue)) queues.set(queue, gpuActivities(spec, queue));
      return queues.get(queue)!;
    };
    let inFlight = 0;
    const runOne = async ({ cell, shard }: { cell: Cell; shard: Shard }) => {
      const request: RunShardInput = {
        cellKey: cell.key,
        shardIndex: shard.shardIndex,
        exampleStart: shard.exampleStart,
        exampleEnd: shard.exampleEnd,
        model: { name: cell.model.name, revision: cell.model.revision },
        task: cell.task,
        strategy: cell.strategy,
        generation: cell.generation,
        scorer: cell.scorer,
        slices: cell.slices,
        device: spec.execution.device,
      };
      try {
        const output = await gpuFor(cell.model.name)[PYTHON_ACTIVITIES.runShard](request);
        const recorded = await local.recordShard({
          sweepId,
          gitSha: input.gitSha,
          modelName: cell.model.name,
          taskKind: TASKS[cell.task.name as TaskName].kind,
          shard,
          output,
        });
        progress.shards.done += 1;
        progress.examples.done += shard.exampleEnd - shard.exampleStart;
        if (recorded.cellDone && !recorded.alreadyRecorded) progress.cells.done += 1;
      } catch (err) {
        if (isCancellation(err)) throw err;
        // one cell's failure does not stop the sweep; the cell is marked and reported
        progress.shards.failed += 1;
        const message = errorMessage(err);
        if (!failures.has(cell.key)) {
          failures.set(cell.key, message);
          failedCells.add(cell.key);
          progress.cells.failed += 1;
          await local.markCellFailed({ cellKey: cell.key, error: message });
        }
      }
    };

    const launched: Array<Promise<void>> = [];
    for (let i = 0; i < pending.length; i++) {
      await condition(() => inFlight < spec.execution.window);
      const job = pending[i]!;
      if (failedCells.has(job.cell.key)) {
        pool.shardSettled(job.cell.model.name);
        continue;
      }
      if (workflowInfo().continueAsNewSuggested) {
        // drain, then start over with a fresh history; the database says what is left
        await condition(() => inFlight === 0);
        await Promise.all(launched);
        await condition(allHandlersFinished);
        return await continueAsNew<typeof sweepWorkflow>({
          ...input,
          continued: {
            resolved,
            failures: [...failures].map(([cellKey, error]) => ({ cellKey, error })),
            startedAt: progress.startedAt,
            runs: progress.runs,
          },
        });
      }
      inFlight += 1;
      progress.shards.inFlight = inFlight;
      progress.currentModel = job.cell.model.name;
      const done = runOne(job).finally(() => {
        inFlight -= 1;
        progress.shards.inFlight = inFlight;
        pool.shardSettled(job.cell.model.name);
      });
      // a cancellation rejects it while the loop waits elsewhere; Promise.all below still sees it
      done.catch(() => undefined);
      launched.push(done);
    }
    await Promise.all(launched);
    await pool.settle();

    progress.phase = 'finishing';
    await pool.remove();
    const status = failedCells.size > 0 ? 'failed' : 'completed';
    await local.finishSweep({ sweepId, status });
    progress.phase = status;
    progress.currentModel = null;
    await condition(allHandlersFinished);
    return {
      sweepId,
      status,
      cells: progress.cells,
      runs: progress.runs,
      failures: [...failures].map(([cellKey, error]) => ({ cellKey, error })),
    };
  } catch (err) {
    // continue-as-new keeps the pool for the next run; anything else that ends the sweep removes it
    if (!(err instanceof ContinueAsNew)) await sweepPool?.remove();
    if (isCancellation(err)) {
      progress.phase = 'cancelled';
      await CancellationScope.nonCancellable(() => local.finishSweep({ sweepId, status: 'cancelled' }));
    } else if (!(err instanceof ApplicationFailure)) {
      progress.phase = 'failed';
    }
    throw err;
  }
}

/** Resolves and expands a spec without running anything; `twice plan` prints the result. */
export async function planWorkflow(input: PlanWorkflowInput): Promise<PlanResult> {
  const resolved = await resolveSweep(input.spec);
  const cells = expandCells(resolved);
  const status = await local.cellStatuses({ keys: cells.map((c) => c.key) });
  return {
    resolved,
    skipped: skippedPairs(resolved),
    cells: cells.map((c) => {
      const s = status[c.key];
      const numShards = shardsOf(c, input.spec.execution.shardSize).length;
      return {
        key: c.key,
        model: c.model.name,
        task: c.task.name,
        strategy: c.strategy.name,
        numExamples: c.numExamples,
        status: s?.status === 'done' ? 'done' : s?.status === 'failed' ? 'failed' : (s?.shards ?? 0) > 0 ? 'partial' : 'new',
        shardsDone: s?.status === 'done' ? numShards : (s?.shards ?? 0),
        numShards,
      };
    }),
  };
}
