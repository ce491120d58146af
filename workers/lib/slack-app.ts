// The Slack app (`twice slack`): one slash command, `/twice`, to run a sweep from a named spec,
// show status, cancel, re-run a failed cell, show a report, and list or change schedules.
// Every command is acknowledged at once (Slack allows 3 seconds); the work and its answer follow
// through the response URL, and a started sweep is followed in a thread of its own: progress
// while it runs, then the results table, the Pareto chart and the dashboard link.
// Reading is open to the whole workspace; starting, cancelling and changing schedules only to
// the users on the allow-list. The threads being followed are kept in PostgreSQL (slack_threads):
// a restarted app resumes each one in the same thread, without repeating the last progress line,
// and posts each summary once.
import { App, LogLevel, type RespondFn } from '@slack/bolt';
import { type WebClient, type WebClientOptions } from '@slack/web-api';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { z } from 'zod';
import { type Db } from '../../activities/db';
import { sweepProgressQuery } from '../../workflows/messages';
import { digestOf, SpecError, type SweepSpec, type ResolvedSweep } from '../../workflows/sweep-spec';
import { repoRoot } from './paths';
import { loadSweepReport } from './report';
import { listSchedules, pauseSchedule, triggerSchedule, unpauseSchedule } from './schedules';
import { CommandError, USAGE, isWrite, parseCommand, type SlackCommand } from './slack-commands';
import { paretoSpec, renderSvg } from './report/charts';
import { type SweepReport } from './report';
import { progressLine, sweepSummary } from './slack-messages';
import { type Rejection, VerifyingReceiver } from './slack-receiver';
import { readSpec, startSweep, workflowIdOf, type SpecFile } from './sweeps';

const SlackEnv = z.object({
  SLACK_SIGNING_SECRET: z.string().min(1, 'required'),
  SLACK_BOT_TOKEN: z.string().regex(/^xox[bp]-/, 'expected a bot token (xoxb-...)'),
  TWICE_SLACK_ALLOWED_USERS: z
    .string()
    .default('')
    .refine((s) => s.split(',').every((u) => !u.trim() || /^[UW][A-Z0-9]+$/.test(u.trim())), 'expected comma-separated Slack user ids (U...)'),
  TWICE_SLACK_CHANNEL: z
    .string()
    .regex(/^[CG][A-Z0-9]+$/, 'expected a channel id (C...)')
    .optional(),
  TWICE_WEB_URL: z.string().url().optional(),
  TWICE_SLACK_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
});

export interface SlackConfig {
  signingSecret: string;
  botToken: string;
  allowedUsers: ReadonlySet<string>;
  /** where nightly summaries and regression alerts go */
  channel: string | null;
  /** base URL of `twice serve`; links are omitted without it */
  webUrl: string | null;
  port: number;
}

export function loadSlackConfig(env: NodeJS.ProcessEnv = process.env): SlackConfig {
  const parsed = SlackEnv.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`invalid Slack settings in the environment:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  return {
    signingSecret: e.SLACK_SIGNING_SECRET,
    botToken: e.SLACK_BOT_TOKEN,
    allowedUsers: new Set(
      e.TWICE_SLACK_ALLOWED_USERS.split(',')
        .map((u) => u.trim())
        .filter(Boolean),
    ),
    channel: e.TWICE_SLACK_CHANNEL ?? null,
    webUrl: e.TWICE_WEB_URL ?? null,
    port: e.TWICE_SLACK_PORT,
  };
}

export interface SlackAppDeps {
  client: Client;
  db: Db;
  config: SlackConfig;
  /** where `/twice run <name>` looks for <name>.yaml */
  specsDir?: string;
  /** the Web API client's options (tests point slackApiUrl at a local fake) */
  clientOptions?: WebClientOptions;
  pollMs?: number;
  /** least time between two progress posts in a sweep's thread */
  progressEveryMs?: number;
  log?: (line: string) => void;
}

const ephemeral = (text: string) => ({ response_type: 'ephemeral' as const, text });

/** Posts the chart of a finished sweep into a thread (or the channel). */
export async function uploadParetoChart(web: WebClient, channel: string, report: SweepReport, threadTs?: string) {
  if (!report.pareto.length) return false;
  // the report's and the dashboard's chart, rendered by the same library
  const svg = await renderSvg(paretoSpec(report.pareto, report.paretoAxis, `Pareto frontier of ${report.sweepId}`));
  const file = { file: Buffer.from(svg, 'utf8'), filename: `pareto-${report.sweepId}.svg`, title: `Pareto frontier of ${report.sweepId}` };
  await web.files.uploadV2(threadTs ? { ...file, channel_id: channel, thread_ts: threadTs } : { ...file, channel_id: channel });
  return true;
}

function specNames(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => f.slice(0, -5))
        .sort()
    : [];
}

/** The one-cell spec that re-runs a cell of an earlier sweep: its model, task entry and strategy. */
export function narrowSpec(
  spec: SweepSpec,
  cell: { modelName: string; taskName: string; taskParams: unknown; strategyName: string; strategyParams: unknown },
): SweepSpec {
  const sameParams = (a: unknown, b: unknown) => digestOf(a ?? {}) === digestOf(b ?? {});
  const tasks = spec.tasks.filter((t) => t.name === cell.taskName && sameParams(t.params, cell.taskParams));
  const strategies = spec.strategies.filter((s) => s.name === cell.strategyName && sameParams(s.params, cell.strategyParams));
  if (!tasks.length || !strategies.length || !spec.models.includes(cell.modelName)) {
    throw new Error('the cell does not belong to the spec it was recorded with');
  }
  return { ...spec, models: [cell.modelName], tasks, strategies };
}

export function createSlackApp(deps: SlackAppDeps) {
  const { config } = deps;
  const log = deps.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const specsDir = deps.specsDir ?? join(repoRoot, 'specs');
  const pollMs = deps.pollMs ?? 2000;
  const progressEveryMs = deps.progressEveryMs ?? 60_000;
  const rejected: Array<{ why: Rejection; detail: string }> = [];
  const receiver = new VerifyingReceiver({
    signingSecret: config.signingSecret,
    onReject: (why, detail) => {
      rejected.push({ why, detail });
      log(`slack: refused a request (${why}: ${detail})`);
    },
  });
  const app = new App({
    token: config.botToken,
    receiver,
    // the bot token is checked by the first Web API call instead of a blocking auth.test
    tokenVerificationEnabled: false,
    clientOptions: deps.clientOptions,
    logLevel: LogLevel.WARN,
  });
  const web = app.client;
  const followUps = new Set<Promise<void>>();
  // stop() ends the followers where they are; their threads stay open for the next start
  let stopping = false;
  let wake: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (wake = resolve));

  const track = (p: Promise<void>) => {
    const tracked = p.catch((err: unknown) => log(`slack: follow-up failed: ${err instanceof Error ? err.message : String(err)}`));
    followUps.add(tracked);
    void tracked.finally(() => followUps.delete(tracked));
  };

  const latestSweep = async (sweep: string) => {
    if (sweep !== 'latest') return sweep;
    const s = await deps.db.sweep.findFirst({ orderBy: { createdAt: 'desc' }, select: { id: true } });
    if (!s) throw new CommandError('no sweeps recorded yet');
    return s.id;
  };

  /**
   * Follows a sweep in its thread until it ends, then posts the summary and the chart. Each step
   * is recorded in the sweep's slack_threads row first, so a follower resumed after a restart
   * goes on from there.
   */
  async function follow(sweepId: string) {
    const thread = await deps.db.slackThread.findUniqueOrThrow({ where: { sweepId } });
    const { channel, threadTs } = thread;
    const handle = deps.client.workflow.getHandle(workflowIdOf(sweepId));
    let finished = false;
    const result = handle.result().then(
      () => null,
      (err: unknown) => err,
    );
    void result.then(() => (finished = true));
    let lastLine = thread.lastProgress ?? '';
    let lastPost = 0;
    while (!finished && !thread.summaryPostedAt) {
      if (stopping) return;
      try {
        const line = progressLine(await handle.query(sweepProgressQuery));
        if (line !== lastLine && Date.now() - lastPost >= progressEveryMs) {
          await web.chat.postMessage({ channel, thread_ts: threadTs, text: line });
          await deps.db.slackThread.update({ where: { sweepId }, data: { lastProgress: line } });
          lastLine = line;
          lastPost = Date.now();
        }
      } catch {
        // between runs (continue-as-new) or just finished: the loop asks again
      }
      await Promise.race([result, stopped, new Promise((r) => setTimeout(r, pollMs))]);
    }
    if (stopping) return;
    const failure = thread.summaryPostedAt ? null : await result;
    const report = await loadSweepReport(deps.db, sweepId);
    if (!thread.summaryPostedAt) {
      if (failure) {
        const reason = failure instanceof Error ? failure.message : String(failure);
        await web.chat.postMessage({ channel, thread_ts: threadTs, text: `Sweep ${sweepId} did not finish: ${reason}` });
      }
      await web.chat.postMessage({ channel, thread_ts: threadTs, ...sweepSummary(report, config.webUrl) });
      await deps.db.slackThread.update({ where: { sweepId }, data: { summaryPostedAt: new Date() } });
    }
    await uploadParetoChart(web, channel, report, threadTs);
    await deps.db.slackThread.update({ where: { sweepId }, data: { finishedAt: new Date() } });
  }

  /** Picks up every thread a previous run of the app left open. */
  async function resume() {
    const open = await deps.db.slackThread.findMany({ where: { finishedAt: null }, orderBy: { createdAt: 'asc' } });
    for (const t of open) track(follow(t.sweepId));
    if (open.length) log(`slack: resuming ${open.length} sweep thread(s): ${open.map((t) => t.sweepId).join(', ')}`);
    return open.length;
  }

  async function launch(spec: SpecFile, command: { channel_id: string; user_id: string }, respond: RespondFn, why: string) {
    const { sweepId } = await startSweep(deps.client, spec);
    const posted = await web.chat.postMessage({
      channel: command.channel_id,
      text: `Sweep ${sweepId} started by <@${command.user_id}>: ${why}. Progress follows in this thread.`,
    });
    if (!posted.ts) throw new Error('chat.postMessage returned no ts');
    await deps.db.slackThread.create({ data: { sweepId, channel: command.channel_id, threadTs: posted.ts } });
    // followed before the answer goes out, so whoever reads the answer finds the follow-up under way
    track(follow(sweepId));
    await respond(ephemeral(`Started sweep ${sweepId}.`));
  }

  async function execute(cmd: SlackCommand, command: { channel_id: string; user_id: string }, respond: RespondFn, spec?: SpecFile) {
    switch (cmd.verb) {
      case 'run':
        // the spec was read and checked before the acknowledgement
        return launch(spec!, command, respond, `spec ${cmd.spec}`);
      case 'status': {
        const sweepId = await latestSweep(cmd.sweep);
        try {
          const p = await deps.client.workflow.getHandle(workflowIdOf(sweepId)).query(sweepProgressQuery);
          return respond(ephemeral(`${sweepId}: ${progressLine(p)}`));
        } catch (err) {
          const s = await deps.db.sweep.findUnique({ where: { id: sweepId } });
          if (!s && !(err instanceof WorkflowNotFoundError)) throw err;
          return respond(ephemeral(s ? `${sweepId}: ${s.status}` : `no sweep "${sweepId}"`));
        }
      }
      case 'cancel': {
        const sweepId = await latestSweep(cmd.sweep);
        await deps.client.workflow.getHandle(workflowIdOf(sweepId)).cancel();
        return respond({ response_type: 'in_channel', text: `<@${command.user_id}> cancelled sweep ${sweepId}.` });
      }
      case 'rerun': {
        const sweep = await deps.db.sweep.findUnique({ where: { id: cmd.sweep } });
        if (!sweep) throw new CommandError(`no sweep "${cmd.sweep}"`);
        const cells = await deps.db.cell.findMany({ where: { key: { startsWith: cmd.cell }, sweeps: { some: { sweepId: sweep.id } } } });
        if (cells.length !== 1) throw new CommandError(`${cells.length} cells of ${sweep.id} start with "${cmd.cell}"; give a longer prefix`);
        const cell = cells[0]!;
        if (cell.status === 'done') throw new CommandError(`cell ${cell.key.slice(0, 12)} is done; its results are reused, nothing to re-run`);
        const spec = narrowSpec((sweep.spec as unknown as ResolvedSweep).spec, cell);
        const text = stringify(spec);
        const file: SpecFile = { spec, text, file: `${sweep.specFile}#cell=${cell.key.slice(0, 12)}` };
        return launch(file, command, respond, `re-running cell ${cell.modelName} / ${cell.taskName} / ${cell.strategyName} of ${sweep.id}`);
      }
      case 'report': {
        const report = await loadSweepReport(deps.db, await latestSweep(cmd.sweep));
        await respond({ response_type: 'in_channel', ...sweepSummary(report, config.webUrl) });
        await uploadParetoChart(web, command.channel_id, report);
        return;
      }
      case 'schedules': {
        const all = await listSchedules(deps.client);
        const lines = all.map((s) => `${s.id}: ${s.specName ?? '-'} ${s.calendar}, ${s.paused ? 'paused' : 'active'}, next ${s.nextRun?.toISOString() ?? '-'}`);
        return respond(ephemeral(lines.length ? lines.join('\n') : 'no schedules'));
      }
      case 'schedule': {
        const note = `${cmd.action}d from Slack by ${command.user_id}`;
        if (cmd.action === 'pause') await pauseSchedule(deps.client, cmd.id, note);
        else if (cmd.action === 'unpause') await unpauseSchedule(deps.client, cmd.id, note);
        else await triggerSchedule(deps.client, cmd.id);
        return respond({
          response_type: 'in_channel',
          text: `<@${command.user_id}>: schedule ${cmd.id} ${cmd.action === 'trigger' ? 'triggered' : `${cmd.action}d`}.`,
        });
      }
      case 'help':
        return respond(ephemeral(USAGE));
    }
  }

  app.command('/twice', async ({ command, ack, respond }) => {
    let cmd: SlackCommand;
    try {
      cmd = parseCommand(command.text);
    } catch (err) {
      if (!(err instanceof CommandError)) throw err;
      await ack(ephemeral(`${err.message}\n${USAGE}`));
      return;
    }
    if (isWrite(cmd) && !config.allowedUsers.has(command.user_id)) {
      log(`slack: ${command.user_id} is not allowed to ${cmd.verb}`);
      await ack(ephemeral(`<@${command.user_id}>, only users on the allow-list may ${cmd.verb === 'schedule' ? 'change schedules' : `${cmd.verb} sweeps`}.`));
      return;
    }
    let spec: SpecFile | undefined;
    if (cmd.verb === 'run') {
      // refuse an unknown or invalid spec in the acknowledgement itself
      const file = join(specsDir, `${cmd.spec}.yaml`);
      if (!existsSync(file)) {
        await ack(ephemeral(`unknown spec "${cmd.spec}"; specs: ${specNames(specsDir).join(', ') || 'none'}`));
        return;
      }
      try {
        spec = readSpec(file);
      } catch (err) {
        if (!(err instanceof SpecError)) throw err;
        await ack(ephemeral(err.message));
        return;
      }
    }
    await ack(ephemeral(cmd.verb === 'run' ? `Starting a sweep of ${cmd.spec}...` : `Working on \`${command.text.trim() || 'help'}\`...`));
    try {
      await execute(cmd, command, respond, spec);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log(`slack: ${cmd.verb} failed: ${message}`);
      await respond(ephemeral(`\`${cmd.verb}\` failed: ${message}`));
    }
  });

  return {
    app,
    receiver,
    web,
    /** requests refused before any listener ran, in order */
    rejected,
    /** listens, and resumes the threads a previous run left open; resolves to how many */
    async start(port = config.port) {
      await receiver.start(port);
      return resume();
    },
    port: () => receiver.port(),
    /** resolves when every follow-up thread has posted its summary */
    async idle() {
      while (followUps.size) await Promise.all([...followUps]);
    },
    /** stops listening and following; sweeps keep running, and their threads stay open */
    async stop() {
      stopping = true;
      wake();
      await receiver.stop();
      await Promise.all([...followUps]);
    },
  };
}
