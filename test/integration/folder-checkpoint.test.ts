// A nightly schedule over a model read from a folder a training job writes into, beside a fixed
// zoo model, on the real Temporal dev server, PostgreSQL and Python worker of the embedded stack.
// The folder's revision is its content digest when each night starts: the second night, with the
// folder untouched, reuses every cell; after "training" writes new weights into the folder, only
// that model's cells run again, and the night's summary says its revision changed from X to Y.
// A sweep planned before new weights landed fails that model's cells at load, naming both digests.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ORCHESTRATOR_QUEUE } from '../../workflows/contract';
import { type NightlyResult } from '../../workflows/messages';
import type { planWorkflow, sweepWorkflow } from '../../workflows/sweep';
import { createSchedule, deleteSchedule, triggerSchedule } from '../../workers/lib/schedules';
import { repoRoot } from '../../workers/lib/paths';
import { readSpec, workflowIdOf } from '../../workers/lib/sweeps';
import { testStack } from '../helpers/fixtures';

const LIKE = 'zoo-attn-tiny';
/** "Training": one value of the last tensor changes (the byte `offset` from the end). */
function flip(weights: string, offset: number) {
  const bytes = readFileSync(weights);
  const at = bytes.length - offset;
  bytes.writeUInt8(bytes.readUInt8(at) ^ 0x01, at);
  writeFileSync(weights, bytes);
}
let nightsRan = false;
const FIXED = 'zoo-based-tiny';

describe('a nightly schedule over a checkpoint folder', { timeout: 600_000 }, () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  const dir = mkdtempSync(join(tmpdir(), 'twice-folder-'));
  const folder = join(dir, 'train-run', 'latest');
  const saved = { roots: process.env.TWICE_DATA_ROOTS, cache: process.env.TWICE_CACHE };
  const restore = (name: 'TWICE_DATA_ROOTS' | 'TWICE_CACHE', value: string | undefined) => {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  };

  before(async () => {
    cpSync(join(repoRoot, 'inference', 'twice_inference', 'zoo', LIKE), folder, { recursive: true });
    writeFileSync(
      join(dir, 'nightly.yaml'),
      [
        'name: folder-night',
        `models: [nightly-attn, ${FIXED}]`,
        `checkpoints: { nightly-attn: { folder: ${folder}, like: ${LIKE} } }`,
        'tasks: [{ name: mqar, params: { numExamples: 8, numKvPairs: 4, seed: 5 } }]',
        'strategies: [default, jrt_prompt]',
        'generation: { maxNewTokens: 2, batchSize: 8 }',
        'execution: { shardSize: 8, window: 2, device: cpu }',
      ].join('\n'),
    );
    // the orchestrator (in this process) and the Python worker (started below) both read these
    process.env.TWICE_DATA_ROOTS = dir;
    process.env.TWICE_CACHE = join(dir, 'cache');
    stack = await testStack({ pythonWorkers: 1 });
  });
  after(async () => {
    await deleteSchedule(stack.client, 'folder-night').catch(() => undefined);
    await stack?.stop();
    restore('TWICE_DATA_ROOTS', saved.roots);
    restore('TWICE_CACHE', saved.cache);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Triggers the schedule and waits for that night to end; its result (sweep and summary). */
  async function night(): Promise<NightlyResult> {
    const handle = stack.client.schedule.getHandle('folder-night');
    const before = (await handle.describe()).info.recentActions.length;
    await triggerSchedule(stack.client, 'folder-night');
    const deadline = Date.now() + 60_000;
    for (;;) {
      const actions = (await handle.describe()).info.recentActions;
      if (actions.length > before) {
        const started = actions[actions.length - 1]!.action.workflow;
        return stack.client.workflow.getHandle(started.workflowId, started.firstExecutionRunId).result();
      }
      if (Date.now() > deadline) throw new Error('the trigger started no night');
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  const revisionOf = async (sweepId: string, model: string) => {
    const cells = await stack.db.cell.findMany({ where: { modelName: model, sweeps: { some: { sweepId } } } });
    assert.equal(cells.length, 2);
    assert.equal(cells[0]!.modelRevision, cells[1]!.modelRevision);
    return cells[0]!.modelRevision;
  };

  it('reuses every cell while the folder is unchanged and re-runs only its model once training writes new weights', async () => {
    await createSchedule(stack.client, join(dir, 'nightly.yaml'), { id: 'folder-night', every: '24h' });

    const first = await night();
    assert.equal(first.status, 'completed');
    assert.deepEqual(first.summary.cells, { total: 4, reused: 0, ran: 4 });
    const x = await revisionOf(first.sweepId, 'nightly-attn');
    assert.match(x, new RegExp(`^folder:${LIKE}@[0-9a-f]{64}$`));
    const fixed = await revisionOf(first.sweepId, FIXED);

    // nothing moved: the folder's digest (read from the cache, not re-hashed) keeps every key
    const second = await night();
    assert.equal(second.status, 'completed');
    assert.equal(second.summary.previousSweepId, first.sweepId);
    assert.deepEqual(second.summary.cells, { total: 4, reused: 4, ran: 0 });
    assert.deepEqual(second.summary.why, []);

    // training writes new weights into the folder (one value of the last tensor changes)
    const weights = join(folder, 'model.safetensors');
    flip(weights, 1);

    const third = await night();
    assert.equal(third.status, 'completed');
    assert.deepEqual(third.summary.cells, { total: 4, reused: 2, ran: 2 });
    const y = await revisionOf(third.sweepId, 'nightly-attn');
    assert.notEqual(y, x);
    assert.equal(await revisionOf(third.sweepId, FIXED), fixed);
    assert.deepEqual(third.summary.why, [
      `nightly-attn / mqar / default: ran because model revision ${JSON.stringify(x)} -> ${JSON.stringify(y)}`,
      `nightly-attn / mqar / jrt_prompt: ran because model revision ${JSON.stringify(x)} -> ${JSON.stringify(y)}`,
    ]);
    // the fixed model's cells of tonight are the very cells of the first night
    const fixedKeys = async (sweepId: string) =>
      (await stack.db.sweepCell.findMany({ where: { sweepId, cell: { modelName: FIXED } }, select: { cellKey: true } })).map((c) => c.cellKey).sort();
    assert.deepEqual(await fixedKeys(third.sweepId), await fixedKeys(first.sweepId));
    nightsRan = true;
  });

  it('fails the cells of the folder model, naming both digests, when its weights moved between the plan and the load', async () => {
    assert.ok(nightsRan, 'runs after the nights above');
    const weights = join(folder, 'model.safetensors');
    const { spec, text, file } = readSpec(join(dir, 'nightly.yaml'));
    const plan = async (id: string) =>
      (await stack.client.workflow.execute<typeof planWorkflow>('planWorkflow', { taskQueue: ORCHESTRATOR_QUEUE, workflowId: id, args: [{ spec }] })).resolved;
    const revision = (resolved: Awaited<ReturnType<typeof plan>>) => resolved.models.find((m) => m.name === 'nightly-attn')!.revision;
    // training writes a checkpoint never evaluated (other bytes than above), the sweep is planned ...
    flip(weights, 2);
    const resolved = await plan('plan/folder-z');
    // ... and training writes the next one before the worker loads the weights
    flip(weights, 3);
    const loaded = revision(await plan('plan/folder-w'));
    assert.notEqual(loaded, revision(resolved));
    // the resolution taken before is handed in as a continued sweep carries it
    const result = await stack.client.workflow.execute<typeof sweepWorkflow>('sweepWorkflow', {
      taskQueue: ORCHESTRATOR_QUEUE,
      workflowId: workflowIdOf('folder-moved'),
      args: [
        { sweepId: 'folder-moved', specFile: file, specYaml: text, spec, gitSha: null, continued: { resolved, failures: [], startedAt: Date.now(), runs: 0 } },
      ],
    });
    assert.equal(result.status, 'failed');
    assert.equal(result.failures.length, 2, 'both nightly-attn cells, nothing of the fixed model');
    const digest = (rev: string) => rev.split('@')[1]!;
    for (const f of result.failures) {
      assert.match(f.error, /checkpoint folder .* changed since the sweep resolved it/);
      assert.ok(f.error.includes(`revision digest ${digest(revision(resolved))}`) && f.error.includes(`now holds ${digest(loaded)}`), f.error);
    }
    const recorded = await stack.db.exampleResult.count({ where: { cell: { modelRevision: revision(resolved) } } });
    assert.equal(recorded, 0, 'nothing recorded under the revision the weights no longer are');
  });
});
