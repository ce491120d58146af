// The command line as a user meets it, run as child processes against a live stack (issue 11):
// item 7 (status of an unknown sweep, cancel of an ended one, a sweep that fails while resolving
// is listed), item 6 (Ctrl-C detaches at once with exit 130, the sweep keeps running), item 5
// (with PostgreSQL down nothing starts and one clear line says why; a follower that loses the
// database says so within seconds) and item 3 (a sweep recorded failed whose cells another sweep
// completes shows "completed later by" it in status, the report and the dashboard).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createDbActivities } from '../../activities/db';
import { ORCHESTRATOR_QUEUE } from '../../workflows/contract';
import type { planWorkflow } from '../../workflows/sweep';
import { loadSweepReport, renderTerminal } from '../../workers/lib/report/index';
import { freePort } from '../../workers/lib/stack';
import { readSpec, startSweep, workflowIdOf } from '../../workers/lib/sweeps';
import { listSweeps } from '../../workers/lib/web/data';
import { sweepRow } from '../../workers/lib/web/pages';
import { cliEnv, spawnTwice, twice } from '../helpers/cli';
import { testPostgres, testStack } from '../helpers/fixtures';

const SPEC = `
name: it-cli
models: [zoo-attn-tiny]
tasks: [{ name: mqar, params: { numExamples: 8, numKvPairs: 4, seed: 5 } }]
strategies: [default]
generation: { maxNewTokens: 2, batchSize: 4 }
execution: { shardSize: 4, window: 1, device: cpu }
`;

describe('the twice command line', { timeout: 900_000 }, () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  let env: NodeJS.ProcessEnv;
  const specFile = join(mkdtempSync(join(tmpdir(), 'twice-cli-')), 'cli.yaml');
  // the sweep `run` starts and Ctrl-C leaves running (no Python worker until the last test)
  let running = '';
  before(async () => {
    writeFileSync(specFile, SPEC);
    stack = await testStack({ pythonWorkers: 0 });
    env = cliEnv({ DATABASE_URL: stack.databaseUrl, TEMPORAL_ADDRESS: stack.temporalAddress, TWICE_STATE_DIR: stack.dir });
  });
  after(async () => {
    await stack?.stop();
  });

  it('status of an unknown sweep exits 1 and names it', async () => {
    const r = await twice(['status', 'no-such-sweep'], env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /no sweep "no-such-sweep"/);
  });

  it('lists a sweep that failed while resolving; cancelling it exits 1 and says it ended', async () => {
    const spec = readSpec(specFile);
    // the catalog check at parse time would refuse this; the workflow must cope on its own
    const { sweepId, handle } = await startSweep(stack.client, { ...spec, spec: { ...spec.spec, models: ['no-such-model'] } });
    await assert.rejects(handle.result());
    const list = await twice(['status'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${sweepId}\\s*│\\s*failed`));
    const one = await twice(['status', sweepId], env);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, new RegExp(`^${sweepId}: failed`));
    const cancel = await twice(['cancel', sweepId], env);
    assert.equal(cancel.code, 1);
    assert.match(cancel.stderr, /has already ended \(failed\); there is nothing to cancel/);
    assert.doesNotMatch(cancel.stdout, /cancellation requested/);
  });

  it('Ctrl-C detaches at once with exit 130 and leaves the sweep running', async () => {
    const run = spawnTwice(['run', specFile], env);
    await run.waitFor(/following sweep (\S+);/);
    running = /following sweep (\S+);/.exec(run.output().stderr)![1]!;
    const sent = Date.now();
    run.child.kill('SIGINT');
    const r = await run.exited;
    console.log(`Ctrl-C to exit: ${Date.now() - sent} ms`);
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, new RegExp(`detached: sweep ${running} keeps running`));
    const described = await stack.client.workflow.getHandle(workflowIdOf(running)).describe();
    assert.equal(described.status.name, 'RUNNING');
  });

  it('with PostgreSQL down, status prints one clear line and run --detach starts nothing', async () => {
    const dead = cliEnv({ ...env, DATABASE_URL: `postgresql://postgres:twice@127.0.0.1:${await freePort()}/twice` });
    const status = await twice(['status'], dead);
    assert.equal(status.code, 1);
    assert.equal(status.stderr.trim().split('\n').length, 1, status.stderr);
    assert.match(status.stderr, /PostgreSQL at 127\.0\.0\.1:\d+\/twice does not answer/);
    assert.doesNotMatch(status.stderr, /invocation|prisma/i);

    const sweeps = async () => {
      let n = 0;
      for await (const w of stack.client.workflow.list({ query: 'WorkflowType = "sweepWorkflow"' })) n += w ? 1 : 0;
      return n;
    };
    const before = await sweeps();
    const run = await twice(['run', specFile, '--detach'], dead);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /PostgreSQL at .* does not answer/);
    assert.doesNotMatch(run.stderr, /started/);
    assert.equal(await sweeps(), before);
  });

  it('a follower that loses PostgreSQL says so within seconds and exits non-zero', async () => {
    const pg = await testPostgres();
    let stopped = false;
    try {
      const follower = spawnTwice(['status', running, '--follow'], cliEnv({ ...env, DATABASE_URL: pg.url }));
      await follower.waitFor(/following sweep/);
      const lost = Date.now();
      await pg.stop();
      stopped = true;
      const r = await follower.exited;
      console.log(`database stopped to follower exit: ${Date.now() - lost} ms`);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`lost PostgreSQL at .* while following sweep ${running}`));
      assert.match(r.stderr, /check that it runs/);
    } finally {
      if (!stopped) await pg.stop();
    }
  });

  it('a sweep recorded failed shows "completed later by" the sweep that completed its cells', async () => {
    // sweep F took the same cells and ended failed before any was done
    const { spec, text } = readSpec(specFile);
    const plan = await stack.client.workflow.execute<typeof planWorkflow>('planWorkflow', {
      taskQueue: ORCHESTRATOR_QUEUE,
      workflowId: 'plan/it-cli',
      args: [{ spec }],
    });
    const db = createDbActivities(stack.db, { workflowRunning: async () => false });
    const failed = 'it-cli-failed';
    await db.registerSweep({
      sweepId: failed,
      workflowId: workflowIdOf(failed),
      specFile,
      specYaml: text,
      resolved: plan.resolved,
      gitSha: null,
      retryFailed: false,
    });
    await db.finishSweep({ sweepId: failed, status: 'failed' });
    assert.match((await twice(['status', failed], env)).stdout, new RegExp(`^${failed}: failed`));

    // the running sweep completes them once a worker comes
    await stack.startPythonWorker().ready;
    const result = await stack.client.workflow.getHandle(workflowIdOf(running)).result();
    assert.equal(result.status, 'completed');

    const later = `completed later by ${running}`;
    const one = await twice(['status', failed], env);
    assert.match(one.stdout, new RegExp(`^${failed}: ${later}`));
    const list = await twice(['status'], env);
    assert.match(list.stdout, new RegExp(`${failed}\\s*│\\s*${later}`));
    assert.match(renderTerminal(await loadSweepReport(stack.db, failed)), new RegExp(`Results of sweep ${failed} \\(${later}\\)`));
    const row = (await listSweeps(stack.db)).find((s) => s.id === failed)!;
    assert.match(sweepRow(row).value, new RegExp(`<td class="status">${later}</td>`));
  });
});
