// Batched recording against real PostgreSQL: several shards in one recordShards call are written
// exactly once, a retried batch writes nothing twice, a shard overlapping what another shard size
// recorded is dropped, a malformed result fails alone, and exactly one shard reports its cell done.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createDbActivities } from '../../activities/db';
import { TASKS, type TaskName } from '../../workflows/catalog';
import { type RunShardOutput } from '../../workflows/contract';
import { type RecordShardInput } from '../../workflows/messages';
import { digestOf, expandCells, parseSweepSpec, shardsOf, type ResolvedSweep, type Shard } from '../../workflows/sweep-spec';
import { tableCounts, testPostgres } from '../helpers/fixtures';

const SPEC = `
name: batch
models: [m-a]
tasks: [{ name: mqar, params: { numExamples: 8, numKvPairs: 4 } }]
strategies: [default, jrt_prompt]
execution: { shardSize: 2 }
`;

function resolved(text = SPEC): ResolvedSweep {
  const spec = parseSweepSpec(text, 'batch.yaml', { families: { 'm-a': 'based' } });
  return {
    spec,
    specDigest: digestOf(spec),
    models: [{ name: 'm-a', revision: 'rev-a', family: 'based', dtype: 'float32' }],
    tasks: spec.tasks.map((t) => {
      const ref = { name: t.name, version: TASKS[t.name as TaskName].version, params: t.params };
      return { ...ref, numExamples: 8, dataDigest: digestOf(ref) };
    }),
  };
}

function output(shard: Shard): RunShardOutput {
  const n = shard.exampleEnd - shard.exampleStart;
  return {
    cellKey: shard.cellKey,
    shardIndex: shard.shardIndex,
    examples: Array.from({ length: n }, (_, i) => ({
      exampleId: shard.exampleStart + i,
      promptDigest: 'a'.repeat(64),
      prompt: `k${shard.exampleStart + i} v1 <b>\nk${shard.exampleStart + i}`,
      prediction: 'v1',
      gold: ['v1'],
      score: 1,
      promptTokens: 10,
      generatedTokens: 1,
    })),
    measurements: [],
    slices: [{ slice: 'other', nllSum: 1.5, tokenCount: 3 }],
    timing: {
      queueSeconds: 0.1,
      dataSeconds: 0.01,
      loadSeconds: 0,
      prefillSeconds: 0.02,
      decodeSeconds: 0.03,
      nllSeconds: 0.01,
      scoringSeconds: 0.001,
      prefillTokens: 20,
      batches: 1,
    },
    worker: { workerVersion: 't', python: '3', torch: '2', device: 'cpu', gpuName: null, driver: null, cuda: null, hostname: 'h', pid: 1 },
    model: { family: 'based', parameters: 1, stateBytes: 1, dtype: 'float32' },
  };
}

const item = (shard: Shard, out: unknown = output(shard)): RecordShardInput => ({
  modelName: 'm-a',
  taskKind: 'recall',
  shard,
  output: out as RunShardOutput,
});

describe('recordShards', () => {
  let pg: Awaited<ReturnType<typeof testPostgres>>;
  before(async () => {
    pg = await testPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  it('records a batch exactly once, and a cell as done by exactly one shard', async () => {
    const acts = createDbActivities(pg.db);
    const r = resolved();
    await acts.registerSweep({ sweepId: 's1', workflowId: 'w1', specFile: 'batch.yaml', specYaml: SPEC, resolved: r, gitSha: null, retryFailed: true });
    const [a, b] = expandCells(r);
    const shardsA = shardsOf(a!, 2);
    const shardsB = shardsOf(b!, 2);
    const base = { sweepId: 's1', gitSha: null };

    // all of cell A and half of cell B, with one malformed result for B
    const first = await acts.recordShards({
      ...base,
      shards: [...shardsA.map((s) => item(s)), item(shardsB[0]!), item(shardsB[1]!, { ...output(shardsB[1]!), examples: [] })],
    });
    assert.deepEqual(
      first.map((x) => [x.alreadyRecorded, x.cellDone, x.malformed === null]),
      [
        [false, false, true],
        [false, false, true],
        [false, false, true],
        [false, true, true],
        [false, false, true],
        [false, false, false],
      ],
    );
    assert.match(first[5]!.malformed!, /returned 0 examples and 0 measurements, expected 2 examples only/);
    const counts = await tableCounts(pg.db);
    assert.equal(counts.shards, 5);
    assert.equal(counts.examples, 10);
    assert.equal(counts.slices, 5);
    // every recall shard's own prefill rate
    assert.equal(counts.throughput, 5);
    assert.equal((await pg.db.cell.findUniqueOrThrow({ where: { key: a!.key } })).status, 'done');
    assert.equal((await pg.db.cell.findUniqueOrThrow({ where: { key: b!.key } })).status, 'pending');
    const row = await pg.db.shardRecord.findFirstOrThrow({ where: { cellKey: a!.key, shardIndex: 0 } });
    assert.equal(row.queueSeconds, 0.1);
    assert.equal(row.nllSeconds, 0.01);
    assert.ok(row.recordSeconds > 0, 'the recording time is kept');
    // the prompt text is stored as sent; a result from a worker older than the prompt field stores NULL
    const withPrompt = await pg.db.exampleResult.findUniqueOrThrow({ where: { cellKey_exampleId: { cellKey: a!.key, exampleId: 1 } } });
    assert.equal(withPrompt.prompt, 'k1 v1 <b>\nk1');

    // the same batch again (a retried activity): nothing is written twice
    const again = await acts.recordShards({ ...base, shards: shardsA.map((s) => item(s)) });
    assert.ok(again.every((x) => x.alreadyRecorded && x.cellDone));
    assert.deepEqual(await tableCounts(pg.db), counts);

    // the rest of B, plus a shard cut with another size that overlaps what is recorded
    const overlapping: Shard = { cellKey: b!.key, shardIndex: 1, exampleStart: 1, exampleEnd: 4 };
    // the last one from a worker older than the prompt field: recorded, its prompts NULL
    const older = (shard: Shard) => ({ ...output(shard), examples: output(shard).examples.map(({ prompt: _, ...e }) => e) });
    const rest = await acts.recordShards({
      ...base,
      shards: [item(overlapping), ...shardsB.slice(1, -1).map((s) => item(s)), item(shardsB.at(-1)!, older(shardsB.at(-1)!))],
    });
    assert.deepEqual(
      rest.map((x) => [x.alreadyRecorded, x.cellDone]),
      [
        [true, true],
        [false, false],
        [false, false],
        [false, true],
      ],
    );
    const stored = await pg.db.cell.findUniqueOrThrow({ where: { key: b!.key }, include: { examples: { select: { exampleId: true } } } });
    assert.equal(stored.status, 'done');
    assert.deepEqual(
      stored.examples.map((e) => e.exampleId).sort((x, y) => x - y),
      [...Array(8).keys()],
    );
    const last = shardsB.at(-1)!;
    const oldRow = await pg.db.exampleResult.findUniqueOrThrow({ where: { cellKey_exampleId: { cellKey: b!.key, exampleId: last.exampleStart } } });
    assert.equal(oldRow.prompt, null);
  });

  it('registers and claims in one call: the cells to compute are claimed, a second live sweep waits on them', async () => {
    const running = new Set(['wf-first']);
    const acts = createDbActivities(pg.db, { workflowRunning: async (id) => running.has(id) });
    const r = resolved(SPEC.replace('numKvPairs: 4', 'numKvPairs: 4, seed: 11'));
    const keys = expandCells(r).map((c) => c.key);
    const register = (sweepId: string, workflowId: string) =>
      acts.registerSweep({ sweepId, workflowId, specFile: 'batch.yaml', specYaml: SPEC, resolved: r, gitSha: null, retryFailed: true, claim: true });

    const first = await register('first', 'wf-first');
    assert.deepEqual(first.waitingOn, {});
    assert.deepEqual(first.done, []);
    assert.deepEqual(first.doneCells, []);
    const claims = await pg.db.cell.findMany({ where: { key: { in: keys } }, select: { claimedBy: true } });
    assert.deepEqual(
      claims.map((c) => c.claimedBy),
      keys.map(() => 'first'),
    );

    const second = await register('second', 'wf-second');
    assert.deepEqual(second.waitingOn, Object.fromEntries(keys.map((k) => [k, 'first'])));
    // without `claim` (an orchestrator of code from before register-claims): no claim made
    const plain = await acts.registerSweep({
      sweepId: 'third',
      workflowId: 'wf-third',
      specFile: 'batch.yaml',
      specYaml: SPEC,
      resolved: r,
      gitSha: null,
      retryFailed: true,
    });
    assert.equal(plain.waitingOn, undefined);

    // a cell whose last shard landed after the waiting sweep read its state: reported done, not
    // left for the waiting sweep to compute again
    await pg.db.cell.update({ where: { key: keys[0]! }, data: { status: 'done' } });
    const again = await acts.claimCells({ sweepId: 'second', keys });
    assert.deepEqual(again.done, [keys[0]]);
    assert.deepEqual(again.waitingOn, { [keys[1]!]: 'first' });
  });

  it('stores every timed run to the last bit, so a one-run point equals its median', async () => {
    // doubles that need all 17 significant digits: Prisma's own Float[] write dropped the last one
    const runs = [0.00031861843620679145, 0.0007326922773509103, 1.2345678901234567e-5];
    const spec = `
name: runs
models: [m-a]
tasks: [{ name: prefill_throughput, params: { lengths: [32, 64], batchSizes: [2], runs: 10 } }]
strategies: [default]
execution: { shardSize: 2 }
`;
    const acts = createDbActivities(pg.db);
    const base = resolved(spec);
    const r: ResolvedSweep = { ...base, tasks: base.tasks.map((t) => ({ ...t, numExamples: 2 })) };
    await acts.registerSweep({ sweepId: 's-runs', workflowId: 'w-runs', specFile: 'runs.yaml', specYaml: spec, resolved: r, gitSha: null, retryFailed: true });
    const [shard] = shardsOf(expandCells(r)[0]!, 2);
    const timed = (scale: number) => ({
      implementation: 'x',
      medianSeconds: runs[0]! * scale,
      minSeconds: runs[2]! * scale,
      runs: 3,
      runSeconds: runs.map((s) => s * scale),
      tokensPerSecond: 64 / (runs[0]! * scale),
    });
    const out: RunShardOutput = {
      ...output(shard!),
      examples: [],
      slices: [],
      measurements: [0, 1].map((exampleId) => ({
        exampleId,
        seqLen: 32 * (exampleId + 1),
        batchSize: 2,
        processedLen: 32 * (exampleId + 1),
        measured: timed(1 + exampleId / 3),
        baseline: timed(2 + exampleId / 7),
        versions: { torch: '2' },
      })),
    };
    const [result] = await acts.recordShards({ sweepId: 's-runs', gitSha: null, shards: [{ ...item(shard!, out), taskKind: 'throughput' }] });
    assert.equal(result!.malformed, null);
    const rows = await pg.db.throughputMeasurement.findMany({ where: { cellKey: shard!.cellKey }, orderBy: [{ exampleId: 'asc' }, { source: 'asc' }] });
    assert.equal(rows.length, 4);
    for (const row of rows) {
      const sent = out.measurements[row.exampleId!]![row.source === 'benchmark' ? 'measured' : 'baseline'];
      assert.deepEqual(row.runSeconds, sent.runSeconds, `${row.source} #${row.exampleId}`);
      assert.equal(row.seconds, sent.runSeconds![0]);
    }
  });
});
