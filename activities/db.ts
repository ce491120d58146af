// Database activities: register a sweep and its cells, record shard results exactly once, close a
// sweep. Activities run at least once, so every write is keyed and idempotent: a retried
// recordShards finds its ShardRecords and writes nothing twice. Tested against real PostgreSQL in
// test/integration/db.test.ts and through whole sweeps in test/integration/sweep.test.ts.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { ERROR_TYPES, RunShardOutput } from '../workflows/contract';
import {
  type ClaimCellsResult,
  type RecordShardInput,
  type RecordShardResult,
  type RecordShardsInput,
  type RegisterSweepInput,
  type RegisteredSweep,
  type SweepState,
} from '../workflows/messages';
import { coveredExamples, digestOf, expandCells, shardWidth, shardsOf, type SweepSpec } from '../workflows/sweep-spec';
import { Prisma, type PrismaClient } from '../generated/prisma/client';

/** The results database: the Prisma client this resource's activities write through. */
export type Db = PrismaClient;

// A large grid's registration or a batch of shards can outlast Prisma's 5 s default on a busy
// machine; the activity's own timeout (2 minutes) is what bounds them.
const TRANSACTION = { maxWait: 30_000, timeout: 90_000 };

/** Whether a sweep's workflow still runs; by default asked of Temporal through the activity's client. */
export type WorkflowRunning = (workflowId: string) => Promise<boolean>;

const askTemporal: WorkflowRunning = async (workflowId) => {
  try {
    const described = await Context.current().client.workflow.getHandle(workflowId).describe();
    return described.status.name === 'RUNNING';
  } catch (err) {
    if (err instanceof Error && err.name === 'WorkflowNotFoundError') return false;
    throw err;
  }
};

export function createDbActivities(db: Db, deps: { workflowRunning?: WorkflowRunning } = {}) {
  const workflowRunning = deps.workflowRunning ?? askTemporal;
  const activities = {
    async registerSweep(input: RegisterSweepInput): Promise<RegisteredSweep> {
      const cells = expandCells(input.resolved);
      const shardSize = input.resolved.spec.execution.shardSize;
      const keys = cells.map((c) => c.key);
      // Plain SQL, a statement per table, the cells as one JSON parameter: the same rows the
      // ORM wrote, without its per-row parameters and its first-use query planning (most of a
      // fresh orchestrator's first registration; docs/measurements/2026-11-29-busy.md).
      const rows = cells.map((c) => ({
        key: c.key,
        model_name: c.model.name,
        model_revision: c.model.revision,
        model_family: c.model.family,
        dtype: c.model.dtype,
        task_name: c.task.name,
        task_version: c.task.version,
        task_params: c.task.params,
        task_data_digest: c.taskDataDigest,
        strategy_name: c.strategy.name,
        strategy_version: c.strategy.version,
        strategy_params: c.strategy.params,
        generation: c.generation,
        scorer: c.scorer,
        slices: c.slices ?? null,
        num_examples: c.numExamples,
        num_shards: shardsOf(c, shardWidth(c, shardSize)).length,
      }));
      await db.$transaction(async (tx) => {
        await tx.$executeRaw`
          INSERT INTO sweeps (id, name, spec_file, spec_yaml, spec, spec_digest, workflow_id, git_sha)
          VALUES (${input.sweepId}, ${input.resolved.spec.name}, ${input.specFile}, ${input.specYaml},
                  ${JSON.stringify(input.resolved)}::jsonb, ${input.resolved.specDigest}, ${input.workflowId}, ${input.gitSha})
          ON CONFLICT (id) DO NOTHING`;
        await tx.$executeRaw`
          INSERT INTO cells (key, model_name, model_revision, model_family, dtype, task_name, task_version, task_params,
                             task_data_digest, strategy_name, strategy_version, strategy_params, generation, scorer, slices,
                             num_examples, num_shards)
          SELECT r.* FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(
                   key text, model_name text, model_revision text, model_family text, dtype text, task_name text,
                   task_version int, task_params jsonb, task_data_digest text, strategy_name text, strategy_version int,
                   strategy_params jsonb, generation jsonb, scorer jsonb, slices jsonb, num_examples int, num_shards int)
          ON CONFLICT (key) DO NOTHING`;
        if (input.retryFailed) {
          // a new sweep gives failed cells another chance; a continued one does not loop on them
          await tx.$executeRaw`UPDATE cells SET status = 'pending', error = NULL WHERE key = ANY(${keys}) AND status = 'failed'`;
        }
        // reused: the cell was already done when this sweep registered
        await tx.$executeRaw`
          INSERT INTO sweep_cells (sweep_id, cell_key, reused)
          SELECT ${input.sweepId}, c.key, c.status = 'done' FROM cells c WHERE c.key = ANY(${keys})
          ON CONFLICT DO NOTHING`;
      }, TRANSACTION);
      const state = await loadSweepState(db, input.sweepId, keys);
      if (!input.claim) return state;
      // the same claim as claimCells, in this activity: one round trip fewer before the first shard
      const done = new Set(state.doneCells);
      const claimed = await activities.claimCells({ sweepId: input.sweepId, keys: keys.filter((k) => !done.has(k)) });
      return { ...state, ...claimed };
    },

    /**
     * Records a batch of finished shards in one transaction: the sweep sends what finished while
     * the previous batch was being written, so the cost of a transaction is shared and recording
     * keeps up with the workers. Each shard is checked on its own: a malformed result is
     * reported for its cell (never retried) and does not hold back the others.
     */
    async recordShards(input: RecordShardsInput): Promise<RecordShardResult[]> {
      // the recording's own share of a sweep, kept with each shard (record_seconds)
      const started = performance.now();
      const checked = input.shards.map(checkShardOutput);
      const results: RecordShardResult[] = checked.map((c) =>
        typeof c === 'string' ? { alreadyRecorded: false, cellDone: false, malformed: c } : { alreadyRecorded: false, cellDone: false, malformed: null },
      );
      const valid = input.shards.flatMap((item, i) => {
        const out = checked[i]!;
        return typeof out === 'string' ? [] : [{ i, item, out }];
      });
      if (valid.length === 0) return results;
      const cellKeys = [...new Set(valid.map((v) => v.item.shard.cellKey))].sort();
      return db.$transaction(async (tx) => {
        // serialise recordings of the same cells (in one order, so two batches cannot deadlock),
        // so exactly one shard sees its cell complete
        await tx.$queryRaw`SELECT key FROM cells WHERE key IN (${Prisma.join(cellKeys)}) ORDER BY key FOR UPDATE`;
        const cells = new Map(
          (await tx.cell.findMany({ where: { key: { in: cellKeys } }, select: { key: true, numExamples: true, status: true } })).map((c) => [c.key, c]),
        );
        const recorded = await tx.shardRecord.findMany({
          where: { cellKey: { in: cellKeys } },
          select: { cellKey: true, shardIndex: true, exampleStart: true, exampleEnd: true },
        });
        const ranges = new Map<string, Array<readonly [number, number]>>(cellKeys.map((k) => [k, []]));
        const indices = new Set<string>();
        for (const r of recorded) {
          ranges.get(r.cellKey)!.push([r.exampleStart, r.exampleEnd]);
          indices.add(`${r.cellKey}#${r.shardIndex}`);
        }
        const accepted: typeof valid = [];
        for (const v of valid) {
          const { shard } = v.item;
          const cellRanges = ranges.get(shard.cellKey)!;
          // recorded before (a retried activity), or some of its examples were recorded by
          // another sweep cutting the cell with another shard size: keep those rows (slice sums
          // are per shard and must not count an example twice); the sweep re-cuts what is still
          // missing before it finishes
          const overlaps = cellRanges.some(([start, end]) => start < shard.exampleEnd && end > shard.exampleStart);
          if (indices.has(`${shard.cellKey}#${shard.shardIndex}`) || overlaps) {
            results[v.i] = { alreadyRecorded: true, cellDone: false, malformed: null };
            continue;
          }
          cellRanges.push([shard.exampleStart, shard.exampleEnd]);
          indices.add(`${shard.cellKey}#${shard.shardIndex}`);
          accepted.push(v);
        }
        await tx.exampleResult.createMany({
          skipDuplicates: true,
          data: accepted.flatMap(({ item: { shard }, out }) =>
            out.examples.map((e) => ({
              cellKey: shard.cellKey,
              exampleId: e.exampleId,
              shardIndex: shard.shardIndex,
              promptDigest: e.promptDigest,
              prompt: e.prompt ?? null,
              prediction: e.prediction,
              gold: e.gold,
              score: e.score,
              promptTokens: e.promptTokens,
              generatedTokens: e.generatedTokens,
            })),
          ),
        });
        await tx.sliceStat.createMany({
          skipDuplicates: true,
          data: accepted.flatMap(({ item: { shard }, out }) =>
            out.slices.map((s) => ({
              cellKey: shard.cellKey,
              shardIndex: shard.shardIndex,
              slice: s.slice,
              nllSum: s.nllSum,
              tokenCount: s.tokenCount,
            })),
          ),
        });
        const timed = accepted.flatMap(({ item, out }) => throughputRows(item, out));
        // the run seconds follow in a statement of their own (writeRunSeconds)
        await tx.throughputMeasurement.createMany({ data: timed.map((row) => ({ ...row, runSeconds: undefined })) });
        await writeRunSeconds(tx, timed);
        // done when every example is covered, whatever shard sizes covered them; the last shard
        // of the batch that covers a cell is the one that completed it
        const donePending = new Set<string>();
        for (const v of [...accepted].reverse()) {
          const key = v.item.shard.cellKey;
          const cell = cells.get(key)!;
          if (donePending.has(key) || coveredExamples(ranges.get(key)!) < cell.numExamples) continue;
          donePending.add(key);
          results[v.i] = { alreadyRecorded: false, cellDone: true, malformed: null };
          await tx.cell.update({
            where: { key },
            data: {
              status: 'done',
              error: null,
              finishedAt: new Date(),
              provenance: { gitSha: input.gitSha, sweepId: input.sweepId, worker: v.out.worker, model: v.out.model },
            },
          });
          await promoteFailedSweeps(tx, { cellKey: key, by: input.sweepId });
        }
        for (const v of valid) {
          const key = v.item.shard.cellKey;
          if (results[v.i]!.alreadyRecorded) results[v.i]!.cellDone = donePending.has(key) || cells.get(key)!.status === 'done';
        }
        // written last, so that record_seconds spans the whole transaction but its commit; each
        // shard carries its share of the batch
        const share = (performance.now() - started) / 1000 / Math.max(1, accepted.length);
        await tx.shardRecord.createMany({
          data: accepted.map(({ item: { shard }, out }) => ({
            cellKey: shard.cellKey,
            shardIndex: shard.shardIndex,
            exampleStart: shard.exampleStart,
            exampleEnd: shard.exampleEnd,
            queueSeconds: out.timing.queueSeconds,
            dataSeconds: out.timing.dataSeconds,
            loadSeconds: out.timing.loadSeconds,
            prefillSeconds: out.timing.prefillSeconds,
            decodeSeconds: out.timing.decodeSeconds,
            nllSeconds: out.timing.nllSeconds,
            scoringSeconds: out.timing.scoringSeconds,
            recordSeconds: share,
            prefillTokens: out.timing.prefillTokens,
            batches: out.timing.batches,
            worker: out.worker,
          })),
        });
        return results;
      }, TRANSACTION);
    },

    /**
     * One shard per transaction, as sweeps recorded before recording was batched: a sweep that
     * was running then replays its history through this activity (workflows/sweep.ts, patch
     * record-shards-batched). A malformed result fails the activity, never retried.
     */
    async recordShard(input: RecordShardInput & { sweepId: string; gitSha: string | null }): Promise<Omit<RecordShardResult, 'malformed'>> {
      const { sweepId, gitSha, ...item } = input;
      const [result] = await activities.recordShards({ sweepId, gitSha, shards: [item] });
      if (result!.malformed !== null) throw ApplicationFailure.nonRetryable(result!.malformed, ERROR_TYPES.malformedShardResult);
      return { alreadyRecorded: result!.alreadyRecorded, cellDone: result!.cellDone };
    },

    /**
     * Claims the unfinished cells among `keys` that no live sweep computes. A claim is held until
     * its sweep ends (finishSweep, closeSweep); one whose sweep is recorded ended, or whose
     * workflow no longer runs (terminated, timed out), is taken over. Returns the cells another
     * live sweep holds, which this sweep waits for instead of computing them a second time.
     */
    async claimCells(input: { sweepId: string; keys: string[] }): Promise<ClaimCellsResult> {
      if (input.keys.length === 0) return { waitingOn: {}, done: [] };
      // Lock the rows first (in key order, so claimers cannot deadlock), then update in a second
      // statement. In one statement, a claimer that blocked on another's row lock re-checks only
      // the row: its NOT EXISTS over sweeps still reads the snapshot taken before it blocked, which
      // may predate the other sweep's registration, so both sweeps won the cell.
      await db.$transaction(async (tx) => {
        await tx.$queryRaw`SELECT key FROM cells WHERE key = ANY(${input.keys}) ORDER BY key FOR UPDATE`;
        await tx.$executeRaw`
          UPDATE cells c SET claimed_by = ${input.sweepId}, claimed_at = now()
           WHERE c.key = ANY(${input.keys}) AND c.status <> 'done'
             AND (c.claimed_by IS NULL OR c.claimed_by = ${input.sweepId}
                  OR NOT EXISTS (SELECT 1 FROM sweeps s WHERE s.id = c.claimed_by AND s.status = 'running'))`;
      }, TRANSACTION);
      const held = await db.$queryRaw<Array<{ key: string; claimed_by: string; workflow_id: string | null }>>`
        SELECT c.key, c.claimed_by, s.workflow_id
          FROM cells c LEFT JOIN sweeps s ON s.id = c.claimed_by
         WHERE c.key = ANY(${input.keys}) AND c.status <> 'done' AND c.claimed_by <> ${input.sweepId}`;
      const waitingOn: Record<string, string> = {};
      const alive = new Map<string, boolean>();
      for (const h of held) {
        if (!alive.has(h.claimed_by)) alive.set(h.claimed_by, h.workflow_id !== null && (await workflowRunning(h.workflow_id)));
        if (alive.get(h.claimed_by)) {
          waitingOn[h.key] = h.claimed_by;
          continue;
        }
        // its sweep died without ending (its record still says running): take the cell over
        const taken = await db.cell.updateMany({
          where: { key: h.key, claimedBy: h.claimed_by },
          data: { claimedBy: input.sweepId, claimedAt: new Date() },
        });
        if (taken.count === 0) waitingOn[h.key] = h.claimed_by; // someone else took it first; ask again later
      }
      // Read after the cells held: a cell done by now is neither held nor to compute, though the
      // state the sweep read before claiming says it is missing (another sweep's last shard landed
      // in between); without this the sweep ran its remaining shards a second time.
      const done = await db.$queryRaw<Array<{ key: string }>>`SELECT key FROM cells WHERE key = ANY(${input.keys}) AND status = 'done'`;
      return { waitingOn, done: done.map((d) => d.key) };
    },

    async markCellFailed(input: { cellKey: string; error: string }): Promise<void> {
      await db.cell.updateMany({
        where: { key: input.cellKey, status: { not: 'done' } },
        data: { status: 'failed', error: input.error.slice(0, 4000) },
      });
    },

    /** Status, recorded shards and covered example ranges of each cell, for `twice plan`. */
    async cellStatuses(input: { keys: string[] }): Promise<Record<string, { status: string; ranges: Array<[number, number]> }>> {
      const cells = await db.cell.findMany({
        where: { key: { in: input.keys } },
        select: { key: true, status: true, shards: { select: { exampleStart: true, exampleEnd: true } } },
      });
      return Object.fromEntries(
        cells.map((c) => [c.key, { status: c.status, ranges: c.shards.map((r) => [r.exampleStart, r.exampleEnd] as [number, number]) }]),
      );
    },

    /** What a sweep's cells hold now: a sweep re-reads it before it may call itself completed. */
    async sweepState(input: { sweepId: string; keys: string[] }): Promise<SweepState> {
      return loadSweepState(db, input.sweepId, input.keys);
    },

    /**
     * Ends a sweep that failed or was cancelled, registering it first when it ended before its
     * cells were known (resolution failed), so that every started sweep is listed.
     */
    async closeSweep(input: {
      sweepId: string;
      status: 'failed' | 'cancelled';
      unresolved: { workflowId: string; specFile: string; specYaml: string; spec: SweepSpec; gitSha: string | null };
    }): Promise<void> {
      const u = input.unresolved;
      await releaseClaims(db, input.sweepId);
      await db.sweep.upsert({
        where: { id: input.sweepId },
        create: {
          id: input.sweepId,
          name: u.spec.name,
          specFile: u.specFile,
          specYaml: u.specYaml,
          spec: { spec: u.spec, unresolved: true } as object,
          specDigest: digestOf(u.spec),
          workflowId: u.workflowId,
          gitSha: u.gitSha,
          status: input.status,
          finishedAt: new Date(),
        },
        update: { status: input.status, finishedAt: new Date() },
      });
    },

    async finishSweep(input: { sweepId: string; status: 'completed' | 'failed' | 'cancelled' }): Promise<void> {
      await releaseClaims(db, input.sweepId);
      await db.$transaction(async (tx) => {
        await tx.sweep.update({
          where: { id: input.sweepId },
          data: { status: input.status, finishedAt: new Date() },
        });
        // its failed cells may have been completed by another sweep before it got here
        if (input.status === 'failed') await promoteFailedSweeps(tx, { sweepId: input.sweepId });
      });
    },
  };
  return activities;
}
export type DbActivities = ReturnType<typeof createDbActivities>;

/** The shard's result, checked against its request; or why it cannot be recorded. */
function checkShardOutput(input: RecordShardInput): RunShardOutput | string {
  const parsed = RunShardOutput.safeParse(input.output);
  if (!parsed.success) {
    return `worker returned a malformed shard result: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`;
  }
  const out = parsed.data;
  const { shard } = input;
  if (out.cellKey !== shard.cellKey || out.shardIndex !== shard.shardIndex) {
    return `shard result is for ${out.cellKey}#${out.shardIndex}, expected ${shard.cellKey}#${shard.shardIndex}`;
  }
  const expected = shard.exampleEnd - shard.exampleStart;
  if (input.taskKind === 'perplexity') {
    // a perplexity shard returns slice sums only, and scores every token of its sequences
    const main = out.slices.filter((s) => s.slice === 'ar_hit' || s.slice === 'other');
    if (out.examples.length !== 0 || out.measurements.length !== 0 || main.length !== 2) {
      return `shard ${shard.cellKey}#${shard.shardIndex} of a perplexity task returned ${out.examples.length} examples, ${out.measurements.length} measurements and slices [${out.slices.map((s) => s.slice).join(', ')}]; expected the ar_hit and other slices only`;
    }
  }
  // a recall shard scores every example; a throughput shard times every point, and neither
  // returns the other's rows
  const [kept, other] =
    input.taskKind === 'throughput'
      ? [out.measurements.length, out.examples.length]
      : input.taskKind === 'perplexity'
        ? [expected, out.examples.length + out.measurements.length]
        : [out.examples.length, out.measurements.length];
  const noun = input.taskKind === 'throughput' ? 'measurements' : 'examples';
  if (kept !== expected || other !== 0) {
    return `shard ${shard.cellKey}#${shard.shardIndex} of a ${input.taskKind} task returned ${out.examples.length} examples and ${out.measurements.length} measurements, expected ${expected} ${noun} only`;
  }
  const pointIds = out.measurements.map((m) => m.exampleId).sort((a, b) => a - b);
  if (pointIds.some((id, i) => id !== shard.exampleStart + i)) {
    return `shard ${shard.cellKey}#${shard.shardIndex} returned points ${pointIds.join(',')}, expected ${shard.exampleStart}..${shard.exampleEnd - 1}`;
  }
  return out;
}

/** A recall shard's own prefill rate, and a throughput shard's timed points with their baselines. */
function throughputRows(input: RecordShardInput, out: RunShardOutput) {
  const { shard } = input;
  const device = { device: out.worker.device, gpuName: out.worker.gpuName };
  const own =
    input.taskKind === 'recall' && out.timing.prefillSeconds > 0
      ? [
          {
            cellKey: shard.cellKey,
            shardIndex: shard.shardIndex,
            source: 'shard-prefill',
            implementation: input.modelName,
            tokens: out.timing.prefillTokens,
            seconds: out.timing.prefillSeconds,
            tokensPerSecond: out.timing.prefillTokens / out.timing.prefillSeconds,
            ...device,
            versions: {
              torch: out.worker.torch,
              python: out.worker.python,
              cuda: out.worker.cuda,
              driver: out.worker.driver,
              worker: out.worker.workerVersion,
            },
          },
        ]
      : [];
  const points = out.measurements.flatMap((m) =>
    (
      [
        ['benchmark', m.measured],
        ['benchmark-baseline', m.baseline],
      ] as const
    ).map(([source, timed]) => ({
      cellKey: shard.cellKey,
      shardIndex: shard.shardIndex,
      source,
      exampleId: m.exampleId,
      implementation: timed.implementation,
      seqLen: m.seqLen,
      batchSize: m.batchSize,
      // the baseline always reads the prompt once
      processedLen: source === 'benchmark' ? m.processedLen : m.seqLen,
      tokens: m.batchSize * m.seqLen,
      seconds: timed.medianSeconds,
      minSeconds: timed.minSeconds,
      runs: timed.runs,
      // left out (NULL) by a worker older than the column: the report falls back to the old range
      runSeconds: timed.runSeconds,
      tokensPerSecond: timed.tokensPerSecond,
      ...device,
      versions: m.versions,
    })),
  );
  return [...own, ...points];
}

/**
 * Every timed run's seconds, written exactly. Prisma 7 sends a Float[] with 16 significant digits
 * where a double needs up to 17, so about a quarter of the runs landed one ulp off their own
 * row's median (a one-run point's median is its run) and the report's two timing paths disagreed
 * in the last digit. JSON text keeps the shortest exact form, and PostgreSQL's numeric to float8
 * rounds it back to the same double.
 */
async function writeRunSeconds(tx: Tx, rows: ReadonlyArray<ReturnType<typeof throughputRows>[number]>): Promise<void> {
  const kept = rows.flatMap((r) =>
    'runSeconds' in r && r.runSeconds
      ? [{ cell_key: r.cellKey, shard_index: r.shardIndex, source: r.source, example_id: r.exampleId, run_seconds: r.runSeconds }]
      : [],
  );
  if (kept.length === 0) return;
  const written = await tx.$executeRaw`
    UPDATE throughput_measurements m SET run_seconds = u.run_seconds
      FROM jsonb_to_recordset(${JSON.stringify(kept)}::jsonb) AS u(cell_key text, shard_index int, source text, example_id int, run_seconds float8[])
     WHERE m.cell_key = u.cell_key AND m.shard_index = u.shard_index AND m.source = u.source AND m.example_id = u.example_id`;
  if (written !== kept.length) throw new Error(`wrote the run seconds of ${written} of ${kept.length} throughput rows`);
}

/** Claims end with their sweep, so the sweeps waiting on its cells take them over at once. */
async function releaseClaims(db: Db, sweepId: string): Promise<void> {
  await db.cell.updateMany({ where: { claimedBy: sweepId }, data: { claimedBy: null, claimedAt: null } });
}

type Tx = Parameters<Parameters<Db['$transaction']>[0]>[0];

/**
 * A sweep's status follows its cells: a sweep recorded failed whose cells are now all done (a
 * later or concurrent sweep completed them) becomes completed, and names the sweep that finished
 * its last cell. Either the sweeps sharing a cell that just completed, or one sweep that just
 * ended failed. A sweep that failed before it had cells (while resolving) stays failed.
 */
async function promoteFailedSweeps(tx: Tx, which: { cellKey: string; by: string } | { sweepId: string }): Promise<void> {
  const allDone = Prisma.sql`EXISTS (SELECT 1 FROM sweep_cells sc WHERE sc.sweep_id = s.id)
     AND NOT EXISTS (SELECT 1 FROM sweep_cells sc JOIN cells c ON c.key = sc.cell_key WHERE sc.sweep_id = s.id AND c.status <> 'done')`;
  if ('cellKey' in which) {
    await tx.$executeRaw`
      UPDATE sweeps s SET status = 'completed', completed_by = ${which.by}
       WHERE s.status = 'failed' AND s.id <> ${which.by}
         AND EXISTS (SELECT 1 FROM sweep_cells sc WHERE sc.sweep_id = s.id AND sc.cell_key = ${which.cellKey})
         AND ${allDone}`;
    return;
  }
  await tx.$executeRaw`
    UPDATE sweeps s SET status = 'completed',
           completed_by = (SELECT c.provenance->>'sweepId' FROM sweep_cells sc JOIN cells c ON c.key = sc.cell_key
                            WHERE sc.sweep_id = s.id ORDER BY c.finished_at DESC NULLS LAST LIMIT 1)
     WHERE s.id = ${which.sweepId} AND s.status = 'failed' AND ${allDone}`;
}

export async function loadSweepState(db: Db, sweepId: string, keys: string[]): Promise<SweepState> {
  const cells = await db.$queryRaw<Array<{ key: string; status: string; reused: boolean | null }>>`
    SELECT c.key, c.status, sc.reused FROM cells c
      LEFT JOIN sweep_cells sc ON sc.cell_key = c.key AND sc.sweep_id = ${sweepId}
     WHERE c.key = ANY(${keys})`;
  const partial = cells.filter((c) => c.status !== 'done').map((c) => c.key);
  const shards = await db.$queryRaw<Array<{ cell_key: string; example_start: number; example_end: number }>>`
    SELECT cell_key, example_start, example_end FROM shard_records WHERE cell_key = ANY(${partial})`;
  const doneRanges: Record<string, Array<[number, number]>> = {};
  for (const s of shards) (doneRanges[s.cell_key] ??= []).push([s.example_start, s.example_end]);
  return {
    doneCells: cells.filter((c) => c.status === 'done').map((c) => c.key),
    reusedCells: cells.filter((c) => c.reused).map((c) => c.key),
    failedCells: cells.filter((c) => c.status === 'failed').map((c) => c.key),
    doneRanges,
  };
}
