// Database activities: register a sweep and its cells, record shard results exactly once, close a
// sweep. Activities run at least once, so every write is keyed and idempotent: a retried
// recordShard finds its ShardRecord and does nothing. Tested against real PostgreSQL in
// test/integration/db.test.ts and through whole sweeps in test/integration/sweep.test.ts.
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { ERROR_TYPES, RunShardOutput } from '../workflows/contract';
import {
  type ClaimCellsResult,
  type RecordShardInput,
  type RecordShardResult,
  type RegisterSweepInput,
  type SweepState,
} from '../workflows/messages';
import { coveredExamples, digestOf, expandCells, shardsOf, type SweepSpec } from '../workflows/sweep-spec';
import { Prisma, type PrismaClient } from '../generated/prisma/client';

/** The results database: the Prisma client this resource's activities write through. */
export type Db = PrismaClient;

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
  return {
    async registerSweep(input: RegisterSweepInput): Promise<SweepState> {
      const cells = expandCells(input.resolved);
      const shardSize = input.resolved.spec.execution.shardSize;
      const keys = cells.map((c) => c.key);
      await db.$transaction(async (tx) => {
        await tx.sweep.upsert({
          where: { id: input.sweepId },
          create: {
            id: input.sweepId,
            name: input.resolved.spec.name,
            specFile: input.specFile,
            specYaml: input.specYaml,
            spec: input.resolved as object,
            specDigest: input.resolved.specDigest,
            workflowId: input.workflowId,
            gitSha: input.gitSha,
          },
          update: {},
        });
        await tx.cell.createMany({
          skipDuplicates: true,
          data: cells.map((c) => ({
            key: c.key,
            modelName: c.model.name,
            modelRevision: c.model.revision,
            modelFamily: c.model.family,
            dtype: c.model.dtype,
            taskName: c.task.name,
            taskVersion: c.task.version,
            taskParams: c.task.params as object,
            taskDataDigest: c.taskDataDigest,
            strategyName: c.strategy.name,
            strategyVersion: c.strategy.version,
            strategyParams: c.strategy.params as object,
            generation: c.generation as object,
            scorer: c.scorer as object,
            slices: (c.slices ?? undefined) as object | undefined,
            numExamples: c.numExamples,
            numShards: shardsOf(c, shardSize).length,
          })),
        });
        if (input.retryFailed) {
          // a new sweep gives failed cells another chance; a continued one does not loop on them
          await tx.cell.updateMany({
            where: { key: { in: keys }, status: 'failed' },
            data: { status: 'pending', error: null },
          });
        }
        const doneBefore = await tx.cell.findMany({
          where: { key: { in: keys }, status: 'done' },
          select: { key: true },
        });
        const reused = new Set(doneBefore.map((c) => c.key));
        await tx.sweepCell.createMany({
          skipDuplicates: true,
          data: keys.map((cellKey) => ({ sweepId: input.sweepId, cellKey, reused: reused.has(cellKey) })),
        });
      });
      return loadSweepState(db, input.sweepId, keys);
    },

    async recordShard(input: RecordShardInput): Promise<RecordShardResult> {
      const parsed = RunShardOutput.safeParse(input.output);
      if (!parsed.success) {
        throw ApplicationFailure.nonRetryable(
          `worker returned a malformed shard result: ${parsed.error.issues
            .map((i) => `${i.path.join('.')}: ${i.message}`)
            .join('; ')}`,
          ERROR_TYPES.malformedShardResult,
        );
      }
      const out = parsed.data;
      const { shard } = input;
      if (out.cellKey !== shard.cellKey || out.shardIndex !== shard.shardIndex) {
        throw ApplicationFailure.nonRetryable(
          `shard result is for ${out.cellKey}#${out.shardIndex}, expected ${shard.cellKey}#${shard.shardIndex}`,
          ERROR_TYPES.malformedShardResult,
        );
      }
      const expected = shard.exampleEnd - shard.exampleStart;
      if (input.taskKind === 'perplexity') {
        // a perplexity shard returns slice sums only, and scores every token of its sequences
        const main = out.slices.filter((s) => s.slice === 'ar_hit' || s.slice === 'other');
        if (out.examples.length !== 0 || out.measurements.length !== 0 || main.length !== 2) {
          throw ApplicationFailure.nonRetryable(
            `shard ${shard.cellKey}#${shard.shardIndex} of a perplexity task returned ${out.examples.length} examples, ${out.measurements.length} measurements and slices [${out.slices.map((s) => s.slice).join(', ')}]; expected the ar_hit and other slices only`,
            ERROR_TYPES.malformedShardResult,
          );
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
        throw ApplicationFailure.nonRetryable(
          `shard ${shard.cellKey}#${shard.shardIndex} of a ${input.taskKind} task returned ${out.examples.length} examples and ${out.measurements.length} measurements, expected ${expected} ${noun} only`,
          ERROR_TYPES.malformedShardResult,
        );
      }
      const pointIds = out.measurements.map((m) => m.exampleId).sort((a, b) => a - b);
      if (pointIds.some((id, i) => id !== shard.exampleStart + i)) {
        throw ApplicationFailure.nonRetryable(
          `shard ${shard.cellKey}#${shard.shardIndex} returned points ${pointIds.join(',')}, expected ${shard.exampleStart}..${shard.exampleEnd - 1}`,
          ERROR_TYPES.malformedShardResult,
        );
      }
      return db.$transaction(async (tx) => {
        // serialise the shards of one cell, so exactly one of them sees the cell complete
        await tx.$queryRaw`SELECT key FROM cells WHERE key = ${shard.cellKey} FOR UPDATE`;
        const prior = await tx.shardRecord.findUnique({
          where: { cellKey_shardIndex: { cellKey: shard.cellKey, shardIndex: shard.shardIndex } },
          select: { cellKey: true },
        });
        if (prior) return { alreadyRecorded: true, cellDone: await isDone(tx, shard.cellKey) };
        // another sweep, cutting the cell with another shard size, recorded some of these
        // examples: keep its rows (slice sums are per shard and must not count an example twice);
        // the sweep re-cuts what is still missing before it finishes
        const overlapping = await tx.shardRecord.findFirst({
          where: { cellKey: shard.cellKey, exampleStart: { lt: shard.exampleEnd }, exampleEnd: { gt: shard.exampleStart } },
          select: { shardIndex: true },
        });
        if (overlapping) return { alreadyRecorded: true, cellDone: await isDone(tx, shard.cellKey) };
        await tx.exampleResult.createMany({
          skipDuplicates: true,
          data: out.examples.map((e) => ({
            cellKey: shard.cellKey,
            exampleId: e.exampleId,
            shardIndex: shard.shardIndex,
            promptDigest: e.promptDigest,
            prediction: e.prediction,
            gold: e.gold,
            score: e.score,
            promptTokens: e.promptTokens,
            generatedTokens: e.generatedTokens,
          })),
        });
        await tx.sliceStat.createMany({
          skipDuplicates: true,
          data: out.slices.map((s) => ({
            cellKey: shard.cellKey,
            shardIndex: shard.shardIndex,
            slice: s.slice,
            nllSum: s.nllSum,
            tokenCount: s.tokenCount,
          })),
        });
        await tx.shardRecord.create({
          data: {
            cellKey: shard.cellKey,
            shardIndex: shard.shardIndex,
            exampleStart: shard.exampleStart,
            exampleEnd: shard.exampleEnd,
            loadSeconds: out.timing.loadSeconds,
            prefillSeconds: out.timing.prefillSeconds,
            decodeSeconds: out.timing.decodeSeconds,
            prefillTokens: out.timing.prefillTokens,
            batches: out.timing.batches,
            worker: out.worker,
          },
        });
        if (input.taskKind === 'recall' && out.timing.prefillSeconds > 0) {
          await tx.throughputMeasurement.create({
            data: {
              cellKey: shard.cellKey,
              shardIndex: shard.shardIndex,
              source: 'shard-prefill',
              implementation: input.modelName,
              tokens: out.timing.prefillTokens,
              seconds: out.timing.prefillSeconds,
              tokensPerSecond: out.timing.prefillTokens / out.timing.prefillSeconds,
              device: out.worker.device,
              gpuName: out.worker.gpuName,
              versions: { torch: out.worker.torch, python: out.worker.python, cuda: out.worker.cuda, driver: out.worker.driver, worker: out.worker.workerVersion },
            },
          });
        }
        await tx.throughputMeasurement.createMany({
          data: out.measurements.flatMap((m) =>
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
              tokensPerSecond: timed.tokensPerSecond,
              device: out.worker.device,
              gpuName: out.worker.gpuName,
              versions: m.versions,
            })),
          ),
        });
        // done when every example is covered, whatever shard sizes covered them
        const cell = await tx.cell.findUniqueOrThrow({ where: { key: shard.cellKey }, select: { numExamples: true } });
        const ranges = await tx.shardRecord.findMany({ where: { cellKey: shard.cellKey }, select: { exampleStart: true, exampleEnd: true } });
        if (coveredExamples(ranges.map((r) => [r.exampleStart, r.exampleEnd] as const)) < cell.numExamples) {
          return { alreadyRecorded: false, cellDone: false };
        }
        await tx.cell.update({
          where: { key: shard.cellKey },
          data: {
            status: 'done',
            error: null,
            finishedAt: new Date(),
            provenance: {
              gitSha: input.gitSha,
              sweepId: input.sweepId,
              worker: out.worker,
              model: out.model,
            },
          },
        });
        await promoteFailedSweeps(tx, { cellKey: shard.cellKey, by: input.sweepId });
        return { alreadyRecorded: false, cellDone: true };
      });
    },

    /**
     * Claims the unfinished cells among `keys` that no live sweep computes. A claim is held until
     * its sweep ends (finishSweep, closeSweep); one whose sweep is recorded ended, or whose
     * workflow no longer runs (terminated, timed out), is taken over. Returns the cells another
     * live sweep holds, which this sweep waits for instead of computing them a second time.
     */
    async claimCells(input: { sweepId: string; keys: string[] }): Promise<ClaimCellsResult> {
      if (input.keys.length === 0) return { waitingOn: {} };
      // one statement: PostgreSQL locks each row it updates, so two sweeps never both win a cell
      await db.$executeRaw`
        UPDATE cells c SET claimed_by = ${input.sweepId}, claimed_at = now()
         WHERE c.key = ANY(${input.keys}) AND c.status <> 'done'
           AND (c.claimed_by IS NULL OR c.claimed_by = ${input.sweepId}
                OR NOT EXISTS (SELECT 1 FROM sweeps s WHERE s.id = c.claimed_by AND s.status = 'running'))`;
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
      return { waitingOn };
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
}
export type DbActivities = ReturnType<typeof createDbActivities>;

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

async function isDone(tx: Tx, cellKey: string): Promise<boolean> {
  const c = await tx.cell.findUnique({ where: { key: cellKey }, select: { status: true } });
  return c?.status === 'done';
}

export async function loadSweepState(db: Db, sweepId: string, keys: string[]): Promise<SweepState> {
  const cells = await db.cell.findMany({
    where: { key: { in: keys } },
    select: { key: true, status: true, sweeps: { where: { sweepId }, select: { reused: true } } },
  });
  const partial = cells.filter((c) => c.status !== 'done').map((c) => c.key);
  const shards = await db.shardRecord.findMany({
    where: { cellKey: { in: partial } },
    select: { cellKey: true, exampleStart: true, exampleEnd: true },
  });
  const doneRanges: Record<string, Array<[number, number]>> = {};
  for (const s of shards) (doneRanges[s.cellKey] ??= []).push([s.exampleStart, s.exampleEnd]);
  return {
    doneCells: cells.filter((c) => c.status === 'done').map((c) => c.key),
    reusedCells: cells.filter((c) => c.sweeps[0]?.reused).map((c) => c.key),
    failedCells: cells.filter((c) => c.status === 'failed').map((c) => c.key),
    doneRanges,
  };
}
