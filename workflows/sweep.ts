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
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type * as dbActivities from '../activities/db';
import type * as catalogActivities from '../activities/catalog';
import { TASKS, type TaskName } from './catalog';
import {
  ERROR_TYPES,
  GPU_QUEUE,
  PYTHON_ACTIVITIES,
  type DescribeTaskInput,
  type DescribeTaskOutput,
  type RunShardInput,
  type RunShardOutput,
} from './contract';
import { RECORD_BATCH_SHARDS, batchedRecorder } from './recording';
import { SweepPool } from './sweep-pool';
import {
  sweepProgressQuery,
  type PlanResult,
  type PlanWorkflowInput,
  type RecordShardInput,
  type RecordShardResult,
  type RegisteredSweep,
  type SweepProgress,
  type SweepResult,
  type SweepState,
  type SweepWorkflowInput,
} from './messages';
import {
  coveredExamples,
  digestOf,
  expandCells,
  resolveGeneratedTask,
  roundMajor,
  shardRequest,
  shardWidth,
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
  retry: {
    initialInterval: '1s',
    maximumInterval: '30s',
    maximumAttempts: 10,
    nonRetryableErrorTypes: [ERROR_TYPES.invalidSpec, ERROR_TYPES.malformedShardResult],
  },
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
      nonRetryableErrorTypes: [ERROR_TYPES.invalidShard, ERROR_TYPES.taskFailed],
    },
  });
}

// Counting a dataset's examples and hashing its bytes sends no heartbeats; it gets a plain timeout.
const describe = proxyActivities<PythonActivities>({
  taskQueue: GPU_QUEUE,
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: [ERROR_TYPES.invalidShard, ERROR_TYPES.taskFailed] },
});

// Prefill benchmarks timed in rounds (one shard per round, rounds of all models in turn; see
// roundMajor in sweep-spec.ts). A sweep started before replays as it ran: one example per
// benchmark point, shards cut by shardSize, in model-major order.
const BENCHMARK_ROUNDS_PATCH = 'benchmark-rounds';

async function resolveSweep(spec: SweepSpec, rounds: boolean): Promise<ResolvedSweep> {
  const models = await local.resolveModels({ names: spec.models, dtype: spec.execution.dtype ?? null, checkpoints: spec.checkpoints });
  const tasks = await Promise.all(
    spec.tasks.map(async (t) => {
      const def = TASKS[t.name as TaskName];
      const ref = { name: t.name, version: def.version, params: t.params };
      if (def.synthetic) return resolveGeneratedTask(t, { rounds });
      // real datasets live where the workers run; ask one of them
      const facts = await describe[PYTHON_ACTIVITIES.describeTask]({ task: ref });
      return { ...ref, numExamples: facts.numExamples, dataDigest: facts.dataDigest };
    }),
  );
  return { spec, specDigest: digestOf(spec), models, tasks };
}

// how many times a sweep re-cuts and runs examples that are still missing once its shards are done
const MISSING_ROUNDS = 3;
// cell keys per claimCells / sweepState call: a grid's keys in one payload (64 characters each)
// would pass Temporal's 2 MB payload limit near 30,000 cells
const KEYS_PAGE = 2000;

function pagesOf<T>(items: T[]): T[][] {
  const pages: T[][] = [];
  for (let i = 0; i < items.length; i += KEYS_PAGE) pages.push(items.slice(i, i + KEYS_PAGE));
  return pages;
}

// longest pause between two looks at cells another sweep is computing
const WAIT_MAX_SECONDS = 15;

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
    waitingOn: {},
  };
  setHandler(sweepProgressQuery, () => ({ ...progress, pool: sweepPool?.line ?? null }));
  // GPU workers for this sweep (workflows/sweep-pool.ts); removed at the end, kept across continue-as-new
  let sweepPool: SweepPool | null = null;
  const sweepEnded = (status: 'failed' | 'cancelled') =>
    local.closeSweep({
      sweepId,
      status,
      unresolved: { workflowId: workflowInfo().workflowId, specFile: input.specFile, specYaml: input.specYaml, spec, gitSha: input.gitSha },
    });

  try {
    // Cell keys go to the database in pages, and a continued run neither registers nor claims
    // again: its first run did both, and claims last until the sweep ends. A sweep started
    // before that replays its history as it ran (one claim and one state read for all cells,
    // registration on every run); called first, so the marker precedes every other command.
    const paged = patched('sweep-keys-paged');
    // only a run continued by this code knows its first run registered (a caller may hand a
    // resolution in through `continued` for a sweep nothing registered yet)
    const resumed = paged && input.continued?.registered === true;
    const rounds = patched(BENCHMARK_ROUNDS_PATCH);
    // a first run of up to KEYS_PAGE cells claims them in the registering activity, one round
    // trip before the first shard fewer; a sweep started before replays its separate claimCells
    const claimOnRegister = patched('register-claims');
    const resolved = input.continued?.resolved ?? (await resolveSweep(spec, rounds));
    const cells = expandCells(resolved);
    const stateOf = async (keys: string[]): Promise<SweepState> => {
      if (!paged) return local.sweepState({ sweepId, keys });
      const parts = await Promise.all(pagesOf(keys).map((page) => local.sweepState({ sweepId, keys: page })));
      return {
        doneCells: parts.flatMap((p) => p.doneCells),
        reusedCells: parts.flatMap((p) => p.reusedCells),
        failedCells: parts.flatMap((p) => p.failedCells),
        doneRanges: Object.assign({}, ...parts.map((p) => p.doneRanges)) as SweepState['doneRanges'],
      };
    };
    const state: RegisteredSweep = resumed
      ? await stateOf(cells.map((c) => c.key))
      : await local.registerSweep({
          sweepId,
          workflowId: workflowInfo().workflowId,
          specFile: input.specFile,
          specYaml: input.specYaml,
          resolved,
          gitSha: input.gitSha,
          retryFailed: !input.continued,
          // a larger grid claims in pages, so that no answer grows with it
          ...(claimOnRegister && cells.length <= KEYS_PAGE ? { claim: true } : {}),
        });
    // failures carry over continue-as-new, so the final result names every failed cell
    const failures = new Map((input.continued?.failures ?? []).map((f) => [f.cellKey, f.error]));
    const failedCells = new Set(failures.keys());
    // another live sweep computing a cell this one needs: wait for it rather than compute it twice.
    // Returns the cells found done meanwhile (none in results recorded before claims said so).
    const claim = async (keys: string[]): Promise<string[]> => {
      if (!paged) {
        const claimed = await local.claimCells({ sweepId, keys });
        progress.waitingOn = claimed.waitingOn;
        return claimed.done ?? [];
      }
      const parts = await Promise.all(pagesOf(keys).map((page) => local.claimCells({ sweepId, keys: page })));
      progress.waitingOn = Object.assign({}, ...parts.map((p) => p.waitingOn)) as SweepProgress['waitingOn'];
      return parts.flatMap((p) => p.done ?? []);
    };
    // a state read before claiming, with the cells the claim found done since
    const withDone = (st: SweepState, done: string[]): SweepState => (done.length ? { ...st, doneCells: [...st.doneCells, ...done] } : st);
    let doneAtClaim: string[] = [];
    if (resumed) progress.waitingOn = input.continued?.waitingOn ?? {};
    // an orchestrator of code from before the patch may have run the activity, and not claimed
    else if (state.waitingOn) {
      progress.waitingOn = state.waitingOn;
      doneAtClaim = state.done ?? [];
    } else {
      const done = new Set(state.doneCells);
      doneAtClaim = await claim(cells.filter((c) => !done.has(c.key)).map((c) => c.key));
    }
    const claimedState = withDone(state, doneAtClaim);

    // the shards still to run, in model-major order; a continued run recomputes this from the
    // database, so nothing has to be carried through continue-as-new but the resolution
    const pendingOf = (st: SweepState) => {
      const jobs: Array<{ cell: Cell; shard: Shard }> = [];
      const doneNow = new Set(st.doneCells);
      let examplesDone = 0;
      let shardsDone = 0;
      for (const cell of cells) {
        const width = rounds ? shardWidth(cell, spec.execution.shardSize) : spec.execution.shardSize;
        if (doneNow.has(cell.key)) {
          examplesDone += cell.numExamples;
          shardsDone += shardsOf(cell, width).length;
          continue;
        }
        const ranges = st.doneRanges[cell.key] ?? [];
        examplesDone += coveredExamples(ranges);
        shardsDone += ranges.length;
        if (failedCells.has(cell.key) || cell.key in progress.waitingOn) continue;
        for (const shard of shardsOf(cell, width, ranges)) jobs.push({ cell, shard });
      }
      return { jobs: rounds ? roundMajor(jobs) : jobs, examplesDone, shardsDone };
    };
    const first = pendingOf(claimedState);
    progress.examples = { total: cells.reduce((n, c) => n + c.numExamples, 0), done: first.examplesDone };
    progress.shards.total = first.shardsDone + first.jobs.length;
    progress.shards.done = first.shardsDone;
    progress.cells = {
      total: cells.length,
      reused: state.reusedCells.length,
      done: claimedState.doneCells.length,
      failed: failedCells.size,
    };
    progress.phase = 'running';

    sweepPool = new SweepPool(
      sweepId,
      workflowInfo().workflowId,
      spec,
      resolved.models.map((m) => m.name),
    );
    await sweepPool.start(countByModel(first.jobs));
    const pool = sweepPool;
    const queues = new Map<string, ReturnType<typeof gpuActivities>>();
    const gpuFor = (model: string) => {
      const queue = pool.queueFor(model);
      if (!queues.has(queue)) queues.set(queue, gpuActivities(spec, queue));
      return queues.get(queue)!;
    };
    // Recording is batched (workflows/recording.ts) and the window counts shards on the workers
    // only, so a slow transaction does not hold the workers back. A sweep started before that
    // replays its history as it ran: one recordShard per shard, counted until recorded.
    const batched = patched('record-shards-batched');
    const record = batched
      ? batchedRecorder(local.recordShards, { sweepId, gitSha: input.gitSha })
      : async (item: RecordShardInput): Promise<RecordShardResult> => ({
          ...(await local.recordShard({ sweepId, gitSha: input.gitSha, ...item })),
          malformed: null,
        });
    let inFlight = 0;
    let unrecorded = 0;
    const runOne = async ({ cell, shard }: { cell: Cell; shard: Shard }, computed: () => void) => {
      const request = shardRequest(cell, shard, spec.execution.device);
      try {
        const output = await gpuFor(cell.model.name)[PYTHON_ACTIVITIES.runShard](request);
        if (batched) computed();
        const recorded = await record({ modelName: cell.model.name, taskKind: TASKS[cell.task.name as TaskName].kind, shard, output });
        if (recorded.malformed !== null) throw ApplicationFailure.nonRetryable(recorded.malformed, ERROR_TYPES.malformedShardResult);
        progress.shards.done += 1;
        progress.examples.done = Math.min(progress.examples.total, progress.examples.done + shard.exampleEnd - shard.exampleStart);
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

    // drain, then start over with a fresh history; the database says what is left
    const continueIfSuggested = async (launched: Array<Promise<void>>) => {
      if (!workflowInfo().continueAsNewSuggested) return;
      await condition(() => unrecorded === 0);
      await Promise.all(launched);
      await condition(allHandlersFinished);
      await continueAsNew<typeof sweepWorkflow>({
        ...input,
        continued: {
          resolved,
          failures: [...failures].map(([cellKey, error]) => ({ cellKey, error })),
          startedAt: progress.startedAt,
          runs: progress.runs,
          waitingOn: progress.waitingOn,
          registered: true,
        },
      });
    };

    const runAll = async (jobs: Array<{ cell: Cell; shard: Shard }>) => {
      const launched: Array<Promise<void>> = [];
      for (const job of jobs) {
        await condition(() => inFlight < spec.execution.window && unrecorded < spec.execution.window + RECORD_BATCH_SHARDS);
        if (failedCells.has(job.cell.key)) {
          pool.shardSettled(job.cell.model.name);
          continue;
        }
        await continueIfSuggested(launched);
        inFlight += 1;
        unrecorded += 1;
        progress.shards.inFlight = inFlight;
        progress.currentModel = job.cell.model.name;
        let onWorker = true;
        const computed = () => {
          if (!onWorker) return;
          onWorker = false;
          inFlight -= 1;
          progress.shards.inFlight = inFlight;
          // its worker is free: a model group with nothing left on its workers can shrink now
          pool.shardSettled(job.cell.model.name);
        };
        const running = runOne(job, computed).finally(() => {
          computed();
          unrecorded -= 1;
        });
        // a cancellation rejects it while the loop waits elsewhere; Promise.all below still sees it
        running.catch(() => undefined);
        launched.push(running);
      }
      await Promise.all(launched);
    };

    // A sweep is completed only when the database says every cell is done. A shard that another
    // sweep had partly covered (another shard size) is dropped by recordShards, so what is still
    // missing is re-cut and run; a cell still incomplete after that is failed, never passed over.
    // Cells another sweep computes are waited for (polling, backing off to WAIT_MAX_SECONDS) and
    // do not count as rounds; a claim whose sweep ends is taken over and its cell run here.
    let jobs = first.jobs;
    let round = 0;
    let pause = 1;
    for (;;) {
      await runAll(jobs);
      const now = await stateOf(cells.map((c) => c.key));
      const doneNow = new Set(now.doneCells);
      const missing = cells.filter((c) => !doneNow.has(c.key) && !failedCells.has(c.key));
      progress.cells.done = now.doneCells.length;
      // cells another sweep completed count as they land
      progress.examples.done = pendingOf(now).examplesDone;
      if (missing.length === 0) {
        progress.waitingOn = {};
        break;
      }
      const waitedBefore = Object.keys(progress.waitingOn).length;
      const doneMeanwhile = new Set(await claim(missing.map((c) => c.key)));
      const mine = missing.filter((c) => !(c.key in progress.waitingOn) && !doneMeanwhile.has(c.key));
      // every missing cell was completed by another sweep while this one read its state
      if (mine.length === 0 && missing.every((c) => doneMeanwhile.has(c.key))) {
        jobs = [];
        continue;
      }
      if (mine.length === 0) {
        pause = waitedBefore ? Math.min(WAIT_MAX_SECONDS, pause * 2) : 1;
        await sleep(`${pause} seconds`);
        await continueIfSuggested([]);
        jobs = [];
        continue;
      }
      if (round >= MISSING_ROUNDS) {
        for (const cell of mine) {
          const message = `${cell.numExamples - coveredExamples(now.doneRanges[cell.key] ?? [])} of ${cell.numExamples} examples were not recorded after ${round + 1} rounds`;
          failures.set(cell.key, message);
          failedCells.add(cell.key);
          await local.markCellFailed({ cellKey: cell.key, error: message });
        }
        progress.cells.failed = failedCells.size;
        jobs = [];
        continue;
      }
      round += 1;
      pause = 1;
      jobs = pendingOf(withDone(now, [...doneMeanwhile])).jobs;
      // the re-cut shards may belong to models whose workers were already scaled away
      await pool.start(countByModel(jobs));
    }
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
    // continue-as-new is not an end: the next run keeps the pool, the claims and the sweep's status
    if (err instanceof ContinueAsNew) throw err;
    await sweepPool?.remove();
    if (isCancellation(err)) {
      progress.phase = 'cancelled';
      await CancellationScope.nonCancellable(() => sweepEnded('cancelled'));
    } else {
      progress.phase = 'failed';
      // recorded ended, never left "running"; one that failed before its cells were known (a
      // missing dataset, an unknown model) is registered here, so `twice status` lists it. The
      // database may be what failed: then the workflow's own failure is the one to report.
      await sweepEnded('failed').catch(() => undefined);
    }
    throw err;
  }
}

/** Resolves and expands a spec without running anything; `twice plan` prints the result. */
export async function planWorkflow(input: PlanWorkflowInput): Promise<PlanResult> {
  const rounds = patched(BENCHMARK_ROUNDS_PATCH);
  const resolved = await resolveSweep(input.spec, rounds);
  const cells = expandCells(resolved);
  const status = await local.cellStatuses({ keys: cells.map((c) => c.key) });
  return {
    resolved,
    skipped: skippedPairs(resolved),
    cells: cells.map((c) => {
      const s = status[c.key];
      const ranges = s?.ranges ?? [];
      const done = s?.status === 'done';
      const width = rounds ? shardWidth(c, input.spec.execution.shardSize) : input.spec.execution.shardSize;
      const toRun = done ? 0 : shardsOf(c, width, ranges).length;
      return {
        key: c.key,
        model: c.model.name,
        task: c.task.name,
        strategy: c.strategy.name,
        numExamples: c.numExamples,
        status: done ? 'done' : s?.status === 'failed' ? 'failed' : ranges.length > 0 ? 'partial' : 'new',
        examplesDone: done ? c.numExamples : coveredExamples(ranges),
        shardsDone: done ? Math.max(ranges.length, 1) : ranges.length,
        numShards: done ? Math.max(ranges.length, 1) : ranges.length + toRun,
      };
    }),
  };
}

/** How many of the jobs each model has: what the pool sizes its groups by. */
function countByModel(jobs: Array<{ cell: Cell }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { cell } of jobs) counts[cell.model.name] = (counts[cell.model.name] ?? 0) + 1;
  return counts;
}
