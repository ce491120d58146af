// Nightly schedules against the real Temporal dev server and PostgreSQL of the embedded stack.
// No Python worker runs, so a triggered night's sweep stays running (its shards wait on the GPU
// queue): that is what lets the test watch the overlap policy skip the next trigger.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createSchedule,
  deleteSchedule,
  describeSchedule,
  listSchedules,
  parseScheduleSettings,
  pauseSchedule,
  unpauseSchedule,
} from '../../workers/lib/schedules';
import { repoRoot } from '../../workers/lib/paths';
import { digestOf, parseSweepSpec } from '../../workflows/sweep-spec';
import { loadModelCatalog } from '../../activities/catalog';
import { testStack } from '../helpers/fixtures';

const SPEC = (numExamples: number) => `
name: nightly-it
models: [zoo-based-tiny]
tasks:
  - name: mqar
    params: { numExamples: ${numExamples}, numKvPairs: 4, seed: 3 }
strategies: [default]
generation: { maxNewTokens: 2, batchSize: 4 }
execution: { shardSize: 4, window: 1, device: cpu }
`;

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('nightly schedules on Temporal', { timeout: 300_000 }, () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  const dir = mkdtempSync(join(tmpdir(), 'twice-sched-'));
  const specPath = join(dir, 'nightly.yaml');

  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'workers', 'twice.ts'), 'schedule', ...args], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: {
        ...process.env,
        DATABASE_URL: stack.databaseUrl,
        TEMPORAL_ADDRESS: stack.temporalAddress,
        TEMPORAL_NAMESPACE: stack.namespace,
      },
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const nightsOf = (scheduleId: string) => stack.db.sweep.findMany({ where: { id: { startsWith: `${scheduleId}-` } }, orderBy: { createdAt: 'asc' } });

  before(async () => {
    writeFileSync(specPath, SPEC(8));
    stack = await testStack();
  });
  after(async () => {
    if (stack) {
      // the nights never finish without a Python worker: end them so the stack stops cleanly
      for await (const w of stack.client.workflow.list({ query: 'ExecutionStatus = "Running"' })) {
        await stack.client.workflow
          .getHandle(w.workflowId, w.runId)
          .terminate('test over')
          .catch(() => undefined);
      }
      await stack.stop();
    }
  });

  it('refuses bad settings before reaching Temporal, naming the field and value', () => {
    const bad = cli('create', 'x', specPath, '--cron', '0 2 * *');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /cron: expected 5 fields .*"0 2 \* \*"/);
    // the same checks without a process each
    assert.throws(() => parseScheduleSettings({ id: 'x', cron: '0 2 * * *', timezone: 'Mars/Olympus' }), /timezone: unknown IANA time zone "Mars\/Olympus"/);
    assert.throws(() => parseScheduleSettings({ id: 'x', cron: '0 2 * * *', every: '1h' }), /give exactly one of a cron expression or an interval/);
    assert.throws(() => parseScheduleSettings({ id: 'X_1', every: '1h' }), /id: expected lowercase letters/);
    assert.throws(() => parseScheduleSettings({ id: 'x', every: '1 week' }), /every: expected a duration/);
    assert.throws(() => parseScheduleSettings({ id: 'x', every: '1h', overlap: 'sometimes' as 'skip' }), /overlap: /);
    const alpha = cli('create', 'x', specPath, '--cron', '0 2 * * *', '--alpha', '2');
    assert.match(alpha.stderr, /expected a number in \(0, 1\), got "2"/);
  });

  it('a schedule created from the CLI runs the spec it was given when triggered, and skips while a night runs', async () => {
    const created = cli('create', 'nightly-a', specPath, '--cron', '0 2 * * *', '--tz', 'Europe/Berlin', '--alpha', '0.01');
    assert.equal(created.code, 0, created.stderr);
    const given = readFileSync(specPath, 'utf8');
    const digest = digestOf(parseSweepSpec(given, specPath, loadModelCatalog(repoRoot)));
    assert.match(created.stdout, new RegExp(`schedule nightly-a created: spec nightly-it \\(digest ${digest.slice(0, 12)}\\)`));

    const d = await describeSchedule(stack.client, 'nightly-a');
    assert.equal(d.specDigest, digest);
    assert.equal(d.alpha, 0.01);
    assert.equal(d.paused, false);
    assert.match(d.calendar, /Europe\/Berlin/);
    assert.ok(d.nextRun && d.nextRun > new Date(), 'the server computed the next 02:00');

    // editing the file afterwards changes nothing about what the schedule runs
    writeFileSync(specPath, SPEC(12));
    const trig = cli('trigger', 'nightly-a');
    assert.equal(trig.code, 0, trig.stderr);
    const [night] = await until('the first night to register its sweep', async () => {
      const n = await nightsOf('nightly-a');
      return n.length ? n : null;
    });
    assert.equal(night!.specYaml, given);
    assert.equal(night!.specDigest, digest);
    assert.match(night!.id, /^nightly-a-\d{8}-\d{6}-[0-9a-f]{4}$/);
    const sweepRun = await stack.client.workflow.getHandle(`sweep/${night!.id}`).describe();
    assert.equal(sweepRun.status.name, 'RUNNING');

    // a second trigger while the first night runs is skipped (overlap policy skip)
    assert.equal(cli('trigger', 'nightly-a').code, 0);
    const after2 = await until('the skipped trigger to be counted', async () => {
      const s = await describeSchedule(stack.client, 'nightly-a');
      return s.skippedOverlap >= 1 ? s : null;
    });
    assert.equal(after2.actionsTaken, 1);
    assert.equal(after2.running, 1);
    await sleep(1000);
    assert.equal((await nightsOf('nightly-a')).length, 1, 'exactly one sweep started');
  });

  it('a paused schedule triggers nothing; unpaused, it does again', async () => {
    await createSchedule(stack.client, specPath, { id: 'tick', every: '1s', paused: true });
    await sleep(3000);
    let d = await describeSchedule(stack.client, 'tick');
    assert.equal(d.paused, true);
    assert.equal(d.actionsTaken + d.skippedOverlap, 0, 'nothing fired while paused');

    await unpauseSchedule(stack.client, 'tick');
    d = await until('the interval to fire', async () => {
      const s = await describeSchedule(stack.client, 'tick');
      return s.actionsTaken >= 1 && s.skippedOverlap >= 1 ? s : null;
    });
    await pauseSchedule(stack.client, 'tick', 'quiet please');
    const frozen = await describeSchedule(stack.client, 'tick');
    assert.equal(frozen.note, 'quiet please');
    await sleep(3000);
    d = await describeSchedule(stack.client, 'tick');
    assert.equal(d.actionsTaken, frozen.actionsTaken);
    assert.equal(d.skippedOverlap, frozen.skippedOverlap);
  });

  it('lists schedules, and delete removes them', async () => {
    await until('both schedules to be listed', async () => (await listSchedules(stack.client)).length === 2);
    const listed = cli('list');
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /nightly-a .*nightly-it/s);
    assert.match(listed.stdout, /tick .*paused/s);

    assert.equal(cli('delete', 'nightly-a').code, 0);
    await deleteSchedule(stack.client, 'tick');
    await assert.rejects(describeSchedule(stack.client, 'nightly-a'), /no schedule "nightly-a"/);
    const gone = cli('describe', 'tick');
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no schedule "tick"/);
    await until('the list to empty', async () => (await listSchedules(stack.client)).length === 0);
    // the night already running is not cut short by deleting its schedule
    const [night] = await nightsOf('nightly-a');
    assert.equal((await stack.client.workflow.getHandle(`sweep/${night!.id}`).describe()).status.name, 'RUNNING');
  });
});
