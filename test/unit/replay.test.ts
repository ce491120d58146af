// Sweeps survive a deploy: histories written by earlier workflow code (captured from real runs with
// scripts/capture-history.ts) replay on the current sweepWorkflow without a determinism error, so
// a sweep running when the orchestrator is upgraded goes on under the new code. Each fixture is
// checked to be the path it stands for, and a tampered history must fail, so a replay that checks
// nothing cannot pass.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { repoRoot } from '../../workers/lib/paths';
import { historyFromCliJson } from '../helpers/history';

const EventType = proto.temporal.api.enums.v1.EventType;
const workflowsPath = join(repoRoot, 'workflows', 'index.ts');

function load(name: string): unknown {
  return JSON.parse(readFileSync(join(repoRoot, 'test', 'histories', name), 'utf8'));
}

/** How many activities of each type the history scheduled, its patches, and whether it is a continued run. */
function summary(json: unknown) {
  const history = historyFromCliJson(json);
  const activities: Record<string, number> = {};
  const patches: string[] = [];
  let continued = false;
  for (const e of history.events ?? []) {
    if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED) {
      const data = e.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
      continued = data ? 'continued' in (JSON.parse(Buffer.from(data).toString('utf8')) as object) : false;
    }
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
      const name = e.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
      activities[name] = (activities[name] ?? 0) + 1;
    }
    if (e.eventType === EventType.EVENT_TYPE_MARKER_RECORDED) {
      const id = e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0]?.data;
      if (id) patches.push((JSON.parse(Buffer.from(id).toString('utf8')) as { id: string }).id);
    }
  }
  return { activities, patches, continued };
}

const replay = (json: unknown) => Worker.runReplayHistory({ workflowsPath, replayName: 'sweep-replay-test' }, historyFromCliJson(json), 'replay');

// each fixture is two runs of one sweep: the first, and the one it continued as new
describe('sweepWorkflow replays histories of earlier code', () => {
  for (const run of [1, 2]) {
    it(`run ${run} of a sweep that recorded one recordShard per shard (before record-shards-batched) replays`, async () => {
      const json = load(`sweep-before-batched-recording-run${run}.json`);
      const { activities, patches, continued } = summary(json);
      assert.equal(continued, run > 1);
      assert.ok((activities.run_shard ?? 0) > 0);
      assert.equal(activities.recordShard, activities.run_shard);
      assert.equal(activities.recordShards, undefined);
      assert.deepEqual(patches, []);
      await replay(json);
    });

    it(`run ${run} of a sweep that registered and claimed on every run (before sweep-keys-paged) replays`, async () => {
      const json = load(`sweep-before-keys-paged-run${run}.json`);
      const { activities, patches, continued } = summary(json);
      assert.equal(continued, run > 1);
      // the continued run registered and claimed again: what the patch leaves out
      assert.equal(activities.registerSweep, 1);
      assert.equal(activities.claimCells, 1);
      assert.ok((activities.recordShards ?? 0) > 0);
      assert.equal(activities.recordShard, undefined);
      assert.deepEqual(patches, ['record-shards-batched']);
      await replay(json);
    });

    it(`run ${run} of a sweep that claimed in an activity of its own (before register-claims) replays`, async () => {
      const json = load(`sweep-before-register-claims-run${run}.json`);
      const { activities, patches, continued } = summary(json);
      assert.equal(continued, run > 1);
      // the first run registered, then claimed in a second activity: what the patch folds in
      assert.equal(activities.registerSweep, run === 1 ? 1 : undefined);
      assert.equal(activities.claimCells, run === 1 ? 1 : undefined);
      assert.ok((activities.run_shard ?? 0) > 0);
      assert.deepEqual(patches, ['sweep-keys-paged', 'benchmark-rounds', 'record-shards-batched']);
      await replay(json);
    });
  }

  it('a history whose commands the code does not issue fails to replay', async () => {
    // the same history with its recording renamed: the workflow schedules recordShard there
    const tampered = JSON.parse(
      JSON.stringify(load('sweep-before-batched-recording-run1.json')).replaceAll('"recordShard"', '"recordShardRenamed"'),
    ) as unknown;
    await assert.rejects(replay(tampered), (err: Error) => {
      assert.match(`${err.name}: ${err.message}`, /Determinism|nondetermin/i);
      return true;
    });
  });
});
