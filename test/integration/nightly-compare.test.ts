// Regression detection after a night, on recorded nights in a real PostgreSQL: four cells of
// 200 examples each; between two nights one cell loses 40 correct answers (the planted
// regression) while every other cell flips a few examples each way (noise). Exactly the planted
// cell is flagged, against the previous night and against a pinned baseline; between two nights
// with no change nothing is.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebClient } from '@slack/web-api';
import { createNightlyActivities, isNightOf, summarizeNight } from '../../activities/nightly';
import { slackNightlyNotifier } from '../../workers/lib/slack-notify';
import { startFakeSlack } from '../helpers/fake-slack';
import { testPostgres } from '../helpers/fixtures';

const N = 200;
const SLOTS = [
  { model: 'zoo-based-tiny', strategy: 'default' },
  { model: 'zoo-based-tiny', strategy: 'jrt_prompt' },
  { model: 'zoo-attn-tiny', strategy: 'default' },
  { model: 'zoo-attn-tiny', strategy: 'jrt_prompt' },
];
const PLANTED = 2; // zoo-attn-tiny / default

/** A seeded generator, so the recorded nights are the same every run. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Night 1's outcomes: about 70% right, per slot. */
function firstNight(): boolean[][] {
  const r = rng(1);
  return SLOTS.map(() => Array.from({ length: N }, () => r() < 0.7));
}

/** The next night: a few flips each way everywhere (noise); in `planted`, 40 right answers lost. */
function nextNight(prev: boolean[][], seed: number, planted: number | null): boolean[][] {
  const r = rng(seed);
  return prev.map((outcomes, slot) => {
    const next = [...outcomes];
    const flip = (want: boolean, count: number) => {
      const idx = next.flatMap((v, i) => (v === want ? [i] : []));
      for (let k = 0; k < count && idx.length; k++) next[idx.splice(Math.floor(r() * idx.length), 1)[0]!] = !want;
    };
    if (slot === planted) flip(true, 40);
    else {
      flip(true, 3);
      flip(false, 3);
    }
    return next;
  });
}

describe('nightly regression detection', { timeout: 120_000 }, () => {
  let pg: Awaited<ReturnType<typeof testPostgres>>;
  before(async () => {
    pg = await testPostgres();
  });
  after(async () => {
    await pg?.stop();
  });

  let clock = Date.UTC(2026, 10, 20, 2, 0, 0);
  async function recordNight(sweepId: string, outcomes: boolean[][], opts: { reuseFrom?: string } = {}) {
    clock += 24 * 3600_000;
    await pg.db.sweep.create({
      data: {
        id: sweepId,
        name: 'nightly-it',
        specFile: 'specs/nightly.yaml',
        specYaml: '',
        spec: {},
        specDigest: 'd',
        workflowId: `sweep/${sweepId}`,
        status: 'completed',
        createdAt: new Date(clock),
        finishedAt: new Date(clock + 3600_000),
      },
    });
    for (const [slot, { model, strategy }] of SLOTS.entries()) {
      const key = opts.reuseFrom ? `${opts.reuseFrom}-${slot}` : `${sweepId}-${slot}`;
      if (!opts.reuseFrom) {
        await pg.db.cell.create({
          data: {
            key,
            modelName: model,
            modelRevision: `rev-${sweepId}`,
            modelFamily: 'based',
            dtype: 'float32',
            taskName: 'mqar',
            taskVersion: 1,
            taskParams: { numExamples: N },
            taskDataDigest: 'data',
            strategyName: strategy,
            strategyVersion: 1,
            strategyParams: {},
            generation: {},
            scorer: {},
            numExamples: N,
            numShards: 1,
            status: 'done',
            createdAt: new Date(clock),
            finishedAt: new Date(clock + 60_000),
          },
        });
        await pg.db.exampleResult.createMany({
          data: outcomes[slot]!.map((right, exampleId) => ({
            cellKey: key,
            exampleId,
            shardIndex: 0,
            promptDigest: 'p',
            prediction: right ? 'gold' : 'other',
            gold: 'gold',
            score: right ? 1 : 0,
            promptTokens: 10,
            generatedTokens: 1,
          })),
        });
      }
      await pg.db.sweepCell.create({ data: { sweepId, cellKey: key, reused: Boolean(opts.reuseFrom) } });
    }
  }

  const night1 = firstNight();
  const night2 = nextNight(night1, 2, PLANTED);
  const settings = { alpha: 0.05, baselineSweepId: null };

  it('names nights by schedule', () => {
    assert.ok(isNightOf('nightly', 'nightly-20261128-020000-ab12'));
    assert.ok(!isNightOf('nightly', 'nightly-x-20261128-020000-ab12'));
    assert.ok(!isNightOf('nightly', 'nightly-20261128-020000'));
  });

  it('flags exactly the planted regression against the previous night', async () => {
    await recordNight('nightly-20261121-020000-aaaa', night1);
    await recordNight('nightly-20261122-020000-bbbb', night2);
    // another schedule's night in between must not be taken for the previous one
    await recordNight('other-20261122-030000-cccc', night1);
    const s = await summarizeNight(pg.db, {
      scheduleId: 'nightly',
      sweepId: 'nightly-20261122-020000-bbbb',
      nightlyWorkflowId: 'nightly/nightly-2026-11-22T02:00:00Z',
      settings,
    });
    assert.equal(s.previousSweepId, 'nightly-20261121-020000-aaaa');
    assert.equal(s.compared.previous, 4);
    assert.deepEqual(
      s.regressions.map((r) => [r.against, r.model, r.strategy, r.flippedToWrong, r.flippedToRight]),
      [['previous', 'zoo-attn-tiny', 'default', 40, 0]],
    );
    const [r] = s.regressions;
    assert.ok(r!.pAdjusted < 0.05 && r!.accuracyAfter < r!.accuracyBefore);
    assert.equal(s.cells.ran, 4);
    assert.equal(s.why.length, 4, 'every cell that ran says why');
    assert.ok(
      s.why.every((line) => line.includes('ran because') && line.includes('rev-nightly-20261121')),
      s.why.join('\n'),
    );
  });

  it('flags nothing between two nights with no change, and the baseline still sees the drop', async () => {
    // night 3 reuses night 2's cells: nothing changed, nothing ran
    await recordNight('nightly-20261123-020000-dddd', night2, { reuseFrom: 'nightly-20261122-020000-bbbb' });
    const quiet = await summarizeNight(pg.db, {
      scheduleId: 'nightly',
      sweepId: 'nightly-20261123-020000-dddd',
      nightlyWorkflowId: 'n',
      settings,
    });
    assert.equal(quiet.previousSweepId, 'nightly-20261122-020000-bbbb');
    assert.deepEqual(quiet.regressions, []);
    assert.deepEqual(quiet.cells, { total: 4, reused: 4, ran: 0 });
    assert.deepEqual(quiet.why, []);

    const pinned = await summarizeNight(pg.db, {
      scheduleId: 'nightly',
      sweepId: 'nightly-20261123-020000-dddd',
      nightlyWorkflowId: 'n',
      settings: { alpha: 0.05, baselineSweepId: 'nightly-20261121-020000-aaaa' },
    });
    assert.equal(pinned.compared.baseline, 4);
    assert.deepEqual(
      pinned.regressions.map((r) => [r.against, r.model, r.strategy]),
      [['baseline', 'zoo-attn-tiny', 'default']],
    );
  });

  it('a noisy night with no planted change flags nothing', async () => {
    await recordNight('nightly-20261124-020000-eeee', nextNight(night2, 4, null));
    const s = await summarizeNight(pg.db, { scheduleId: 'nightly', sweepId: 'nightly-20261124-020000-eeee', nightlyWorkflowId: 'n', settings });
    assert.equal(s.compared.previous, 4);
    assert.deepEqual(s.regressions, []);
  });

  it('announces the night and its regression in the configured channel', async () => {
    const fake = await startFakeSlack();
    try {
      const web = new WebClient('xoxb-test', { slackApiUrl: fake.apiUrl, retryConfig: { retries: 0 } });
      const activities = createNightlyActivities(pg.db, slackNightlyNotifier(web, 'C0NIGHTLY', 'http://dash.test'));
      await activities.summarizeNight({ scheduleId: 'nightly', sweepId: 'nightly-20261122-020000-bbbb', nightlyWorkflowId: 'n', settings });
      const [post] = fake.named('chat.postMessage');
      assert.equal(post!.body.channel, 'C0NIGHTLY');
      assert.equal(post!.body.text, 'Night nightly-20261122-020000-bbbb of nightly: 1 regression(s)');
      const blocks = JSON.parse(String(post!.body.blocks)) as Array<{ type: string; text?: { text: string }; elements?: Array<{ url?: string }> }>;
      assert.equal(blocks[0]!.text!.text, 'Regression: nightly');
      assert.match(blocks[2]!.text!.text, /vs last night \(nightly-20261121-020000-aaaa\): zoo-attn-tiny \/ mqar \/ default .*40 right->wrong, 0 wrong->right/);
      assert.match(blocks[3]!.text!.text, /What ran and why/);
      assert.equal(blocks[4]!.elements![0]!.url, 'http://dash.test/sweeps/nightly-20261122-020000-bbbb');
    } finally {
      await fake.stop();
    }
  });

  it('refuses an unknown baseline by name', async () => {
    await assert.rejects(
      summarizeNight(pg.db, {
        scheduleId: 'nightly',
        sweepId: 'nightly-20261124-020000-eeee',
        nightlyWorkflowId: 'n',
        settings: { alpha: 0.05, baselineSweepId: 'no-such-sweep' },
      }),
      /baseline sweep "no-such-sweep" is not in the database/,
    );
  });
});
