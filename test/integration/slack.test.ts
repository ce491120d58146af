// The Slack app end to end: real HTTP into the app (Slack's signing scheme), the real embedded
// stack (Temporal dev server, PostgreSQL, a Python worker on the CPU), and a local fake of
// Slack's Web API that Bolt's own client talks to. A signed `/twice run` starts exactly one sweep
// and its thread gets progress, the results table, the chart upload and the dashboard link; every
// refused request starts nothing.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createSlackApp } from '../../workers/lib/slack-app';
import { workflowIdOf } from '../../workers/lib/sweeps';
import { slackSignature, slashCommandBody, startFakeSlack, type FakeSlack } from '../helpers/fake-slack';
import { testStack } from '../helpers/fixtures';

const SECRET = 'test-signing-secret';
const ALLOWED = 'UALLOWED';
const CHANNEL = 'C0SWEEPS';
const WEB = 'http://dashboard.test';

const TINY = `
name: slack-tiny
models: [zoo-based-tiny, zoo-attn-tiny]
tasks:
  - name: mqar
    params: { numExamples: 8, numKvPairs: 4, seed: 11 }
strategies: [default]
generation: { maxNewTokens: 2, batchSize: 4 }
execution: { shardSize: 8, window: 2, device: cpu }
`;

describe('the Slack app', { timeout: 600_000 }, () => {
  let stack: Awaited<ReturnType<typeof testStack>>;
  let fake: FakeSlack;
  let slack: ReturnType<typeof createSlackApp>;
  let url = '';
  const specsDir = mkdtempSync(join(tmpdir(), 'twice-slack-specs-'));
  let responseSeq = 0;

  /** Posts a slash command; headers are Slack's by default, or whatever the case needs. */
  async function send(text: string, opts: { user?: string; headers?: Record<string, string>; body?: string; ts?: number } = {}) {
    const name = `r${++responseSeq}`;
    const body = opts.body ?? slashCommandBody({ text, user: opts.user ?? ALLOWED, channel: CHANNEL, responseUrl: fake.responseUrl(name) });
    const ts = opts.ts ?? Math.floor(Date.now() / 1000);
    const headers = opts.headers ?? slackSignature(SECRET, ts, body);
    const started = Date.now();
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
    const raw = await res.text();
    return {
      status: res.status,
      ack: raw ? (JSON.parse(raw) as { text: string }) : null,
      ms: Date.now() - started,
      name,
      body,
      headers,
    };
  }
  const sweeps = () => stack.db.sweep.count();
  const sweepWorkflows = async () => {
    let n = 0;
    for await (const w of stack.client.workflow.list({ query: 'WorkflowType = "sweepWorkflow"' })) if (w) n += 1;
    return n;
  };
  /** waits for the answer a command sends to its response_url after the acknowledgement */
  async function answer(name: string, count = 1) {
    const deadline = Date.now() + 30_000;
    while ((fake.responses.get(name)?.length ?? 0) < count) {
      if (Date.now() > deadline) throw new Error(`no answer on response_url ${name}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return fake.responses.get(name)!;
  }

  /** a fresh app on the same database, as `twice slack` after a restart; resolves to the threads it resumed */
  async function startApp() {
    slack = createSlackApp({
      client: stack.client,
      db: stack.db,
      config: { signingSecret: SECRET, botToken: 'xoxb-test', allowedUsers: new Set([ALLOWED]), channel: CHANNEL, webUrl: WEB, port: 0 },
      specsDir,
      clientOptions: { slackApiUrl: fake.apiUrl, retryConfig: { retries: 0 } },
      pollMs: 200,
      progressEveryMs: 0,
      log: () => undefined,
    });
    const resumed = await slack.start(0);
    url = `http://127.0.0.1:${slack.port()}/slack/events`;
    return resumed;
  }

  before(async () => {
    writeFileSync(join(specsDir, 'tiny.yaml'), TINY);
    writeFileSync(join(specsDir, 'tiny-next.yaml'), TINY.replace('seed: 11', 'seed: 12').replace('numExamples: 8', 'numExamples: 16'));
    writeFileSync(join(specsDir, 'broken.yaml'), TINY.replace('numExamples: 8', 'numExamples: -1'));
    fake = await startFakeSlack();
    stack = await testStack({ pythonWorkers: 1 });
    await startApp();
  });
  after(async () => {
    await slack?.stop();
    await stack?.stop();
    await fake?.stop();
  });

  let first: Awaited<ReturnType<typeof send>>;

  it('a signed /twice run starts exactly one sweep and follows it up in a thread', async () => {
    first = await send('run tiny');
    assert.equal(first.status, 200);
    assert.match(first.ack!.text, /Starting a sweep of tiny/);
    assert.ok(first.ms < 3000, `acknowledged in ${first.ms} ms, beyond Slack's 3 s`);
    const [started] = await answer(first.name);
    const sweepId = /Started sweep (\S+)\./.exec(String(started!.text))?.[1];
    assert.ok(sweepId, JSON.stringify(started));

    await slack.idle();
    assert.equal(await sweeps(), 1);
    assert.equal(await sweepWorkflows(), 1);
    const sweep = await stack.db.sweep.findUniqueOrThrow({ where: { id: sweepId } });
    assert.equal(sweep.status, 'completed');

    const [openingCall, ...threadCalls] = fake.named('chat.postMessage');
    const opening = openingCall!.body;
    const thread = threadCalls.map((c) => c.body);
    assert.equal(opening!.channel, CHANNEL);
    assert.equal(opening!.thread_ts, undefined);
    assert.match(String(opening!.text), new RegExp(`Sweep ${sweepId} started by <@${ALLOWED}>`));
    const ts = openingCall!.result!.ts;
    assert.ok(thread.length >= 2, 'progress and a summary');
    for (const p of thread) assert.equal(p.thread_ts, ts, 'every follow-up is in the thread');
    assert.ok(
      thread.some((p) => /^(resolving|running|finishing): cells \d+\/\d+/.test(String(p.text))),
      'a progress line',
    );

    const summary = thread.at(-1)!;
    type Block = { type: string; text?: { text: string }; elements?: Array<{ url?: string }> };
    const blocks = JSON.parse(String(summary.blocks)) as Block[];
    assert.deepEqual(
      blocks.map((b) => b.type),
      ['header', 'section', 'section', 'actions'],
    );
    assert.equal(blocks[0]!.text!.text, `Sweep ${sweepId}: completed`);
    assert.match(blocks[2]!.text!.text, /zoo-based-tiny .*mqar .*default/s);
    assert.match(blocks[2]!.text!.text, /zoo-attn-tiny/);
    assert.equal(blocks[3]!.elements![0]!.url, `${WEB}/sweeps/${sweepId}`);

    const [getUrl] = fake.named('files.getUploadURLExternal');
    assert.equal(getUrl!.body.filename, `pareto-${sweepId}.svg`);
    const [complete] = fake.named('files.completeUploadExternal');
    assert.equal(complete!.body.channel_id, CHANNEL);
    assert.equal(complete!.body.thread_ts, ts);
    const uploaded = [...fake.uploads.values()][0]!.toString('utf8');
    // the client posts the bytes as multipart form data to the URL it was handed
    assert.match(uploaded, /<svg [\s\S]*<\/svg>/);
    for (const model of ['zoo-attn-tiny', 'zoo-based-tiny']) assert.ok(uploaded.includes(model), `the chart names ${model}`);
  });

  it('anyone may read: status and report answer a user not on the allow-list', async () => {
    const status = await send('status latest', { user: 'UREADER' });
    assert.equal(status.status, 200);
    const [s] = await answer(status.name);
    assert.match(String(s!.text), /: completed/);
    const report = await send('report', { user: 'UREADER' });
    const [r] = await answer(report.name);
    assert.match(String(r!.text), /Sweep \S+ completed: 2 cells, 0 failed/);
  });

  it('refuses, starting nothing: bad, missing, stale, future and replayed signatures; outsiders; unknown specs; malformed commands', async () => {
    const before = { sweeps: await sweeps(), workflows: await sweepWorkflows(), rejected: slack.rejected.length };
    const now = Math.floor(Date.now() / 1000);
    const body = (user = ALLOWED) => slashCommandBody({ text: 'run tiny', user, responseUrl: fake.responseUrl('refused') });

    const forged = await send('', { body: body(), headers: slackSignature('wrong-secret', now, body()) });
    const missing = await send('', { body: body(), headers: {} });
    const stale = await send('', { body: body(), ts: now - 301 });
    const future = await send('', { body: body(), ts: now + 600 });
    const replayed = await send('', { body: first.body, headers: first.headers });
    const tampered = await send('', { body: body().replace('run+tiny', 'run+broken'), headers: slackSignature(SECRET, now, body()) });
    for (const [what, r] of Object.entries({ forged, missing, stale, future, replayed, tampered })) {
      assert.equal(r.status, 401, `${what} got ${r.status}`);
    }
    assert.deepEqual(
      slack.rejected.slice(before.rejected).map((r) => r.why),
      ['bad signature', 'missing signature', 'stale timestamp', 'future timestamp', 'replayed', 'bad signature'],
    );

    const outsider = await send('run tiny', { user: 'UOUTSIDER' });
    assert.match(outsider.ack!.text, /only users on the allow-list may run sweeps/);
    const outsiderCancel = await send('cancel latest', { user: 'UOUTSIDER' });
    assert.match(outsiderCancel.ack!.text, /may cancel sweeps/);
    const outsiderSchedule = await send('schedule pause nightly', { user: 'UOUTSIDER' });
    assert.match(outsiderSchedule.ack!.text, /may change schedules/);
    const unknown = await send('run nope');
    assert.match(unknown.ack!.text, /unknown spec "nope"; specs: broken, tiny/);
    const invalid = await send('run broken');
    assert.match(invalid.ack!.text, /numExamples/);
    const cases: Array<[string, RegExp]> = [
      ['run', /missing spec name|takes 1 argument/],
      ['run ../../etc/passwd', /spec name "..\/..\/etc\/passwd" is not valid/],
      ['run tiny extra', /`run` takes 1 argument\(s\), got 2/],
      ['frobnicate all', /unknown command "frobnicate"/],
      ['schedule explode nightly', /`schedule` takes pause, unpause or trigger, got "explode"/],
      ['rerun latest xyz', /cell key prefix "xyz" is not valid/],
    ];
    for (const [text, message] of cases) {
      const r = await send(text);
      assert.equal(r.status, 200);
      assert.match(r.ack!.text, message, text);
    }
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await sweeps(), before.sweeps, 'no sweep recorded');
    assert.equal(await sweepWorkflows(), before.workflows, 'no workflow started');
    assert.equal(fake.responses.get('refused'), undefined, 'no answer to a refused request');
  });

  it('resumes its threads after a restart: the summary lands once, in the same thread', async () => {
    const finishedThreads = await stack.db.slackThread.count({ where: { finishedAt: { not: null } } });
    assert.equal(finishedThreads, 1, "the first sweep's thread is closed");
    const run = await send('run tiny-next');
    const [started] = await answer(run.name);
    const sweepId = /Started sweep (\S+)\./.exec(String(started!.text))?.[1];
    assert.ok(sweepId, JSON.stringify(started));
    // the app goes away while the sweep runs, and the sweep finishes with nobody following it
    await slack.stop();
    const open = await stack.db.slackThread.findUniqueOrThrow({ where: { sweepId } });
    assert.equal(open.summaryPostedAt, null);
    assert.equal(open.finishedAt, null);
    await stack.client.workflow.getHandle(workflowIdOf(sweepId)).result();
    const opening = fake.named('chat.postMessage').find((c) => String(c.body.text).startsWith(`Sweep ${sweepId} started`))!;
    const ts = opening.result!.ts;
    assert.equal(open.threadTs, ts);
    const inThread = () =>
      fake
        .named('chat.postMessage')
        .filter((c) => c.body.thread_ts === ts)
        .map((c) => String(c.body.text));
    const beforeRestart = inThread();
    assert.ok(
      beforeRestart.every((t) => !/Sweep \S+ completed:/.test(t)),
      'no summary before the restart',
    );

    assert.equal(await startApp(), 1, 'one thread resumed');
    await slack.idle();
    const after = inThread();
    assert.deepEqual(after.slice(0, beforeRestart.length), beforeRestart);
    const summaries = after.filter((t) => /Sweep \S+ completed: 2 cells, 0 failed/.test(t));
    assert.equal(summaries.length, 1, after.join('\n'));
    assert.ok(
      after.every((t, i) => i === 0 || t !== after[i - 1]),
      'no progress line repeated',
    );
    const upload = fake.named('files.completeUploadExternal').at(-1)!;
    assert.equal(upload.body.thread_ts, ts, 'the chart goes to the same thread');
    const closed = await stack.db.slackThread.findUniqueOrThrow({ where: { sweepId } });
    assert.ok(closed.summaryPostedAt && closed.finishedAt);

    // and a further restart has nothing left to resume
    const posts = fake.named('chat.postMessage').length;
    await slack.stop();
    assert.equal(await startApp(), 0);
    await slack.idle();
    assert.equal(fake.named('chat.postMessage').length, posts);
  });
});
