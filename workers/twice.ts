#!/usr/bin/env -S node --import tsx
// The `twice` command line: run a sweep spec and follow it, plan it, watch, cancel and report
// sweeps, serve the web dashboard, list models, manage the embedded stack. `twice --help` and `twice <command> --help`.
import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { Command } from 'commander';
import { SingleBar } from 'cli-progress';
import { randomBytes } from 'node:crypto';
import { join, relative } from 'node:path';
import { loadModelCatalog } from '../activities/catalog';
import { explainNewCells, loadSweepReport, renderTerminal, sweepStatusText, textTable, writeReport } from './lib/report/index';
import { ORCHESTRATOR_QUEUE } from '../workflows/contract';
import { sweepProgressQuery, type SweepProgress } from '../workflows/messages';
import type { planWorkflow } from '../workflows/sweep';
import { SpecError, type SweepSpec } from '../workflows/sweep-spec';
import { describeMissing, specAssets } from './lib/assets';
import { EtaEstimator, formatEta } from './lib/eta';
import { printModels } from './models-command';
import { pull } from './pull-command';
import { buildBigrams } from './bigrams-command';
import { loadEnv } from './lib/env';
import { withDeadline } from './lib/health';
import { callerPath, repoRoot } from './lib/paths';
import { openSession, readStackInfo, recoverStaleStack, stopDaemon, type Session } from './lib/session';
import { statusLine, readSpec, startSweep, workflowIdOf } from './lib/sweeps';
import { registerScheduleCommands } from './schedule';
import { serve } from './serve';
import { runSlackApp } from './slack';

const out = (line = '') => process.stdout.write(`${line}\n`);
const note = (line: string) => process.stderr.write(`${line}\n`);

async function latestSweepId(session: Session): Promise<string> {
  const s = await session.db.sweep.findFirst({ orderBy: { createdAt: 'desc' }, select: { id: true } });
  if (!s) throw new Error('no sweeps recorded yet');
  return s.id;
}

const HEALTH_EVERY_MS = 2_000;

/** Follows a sweep with a progress bar until it ends; Ctrl-C detaches and leaves it running. */
async function follow(session: Session, handle: WorkflowHandle, sweepId: string): Promise<'done'> {
  const bar = new SingleBar({
    format: '{bar} {percentage}% | examples {value}/{total} | cells {cellsDone}/{cellsTotal} ({reused} reused, {failed} failed) | {model} | ETA {etaText}',
    noTTYOutput: true,
    notTTYSchedule: 10_000,
    hideCursor: true,
    barCompleteChar: '#',
    barIncompleteChar: '.',
  });
  let started = false;
  const onSigint = () => {
    // the sweep runs in the orchestrator, not here: nothing of this process needs an orderly
    // close, and waiting for open long polls to drain is what made Ctrl-C take seconds
    if (started) bar.stop();
    note(`\ndetached: sweep ${sweepId} keeps running.`);
    note(`  follow it:  npm run twice -- status ${sweepId} --follow`);
    note(`  cancel it:  npm run twice -- cancel ${sweepId}`);
    if (session.startedStack) note('  the embedded stack stays up until `npm run twice -- stack down`');
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  note(`following sweep ${sweepId}; Ctrl-C detaches and leaves it running`);
  const eta = new EtaEstimator();
  const update = (p: SweepProgress) => {
    const payload = {
      etaText: formatEta(eta.update(Date.now(), p.examples.done, p.examples.total, p.currentModel)),
      cellsDone: p.cells.done,
      cellsTotal: p.cells.total,
      reused: p.cells.reused,
      failed: p.cells.failed,
      // a Kubernetes pool's readiness line; the local pool has nothing to say
      model: [p.currentModel ?? p.phase, p.pool?.startsWith('pool (kubernetes)') ? p.pool : null].filter(Boolean).join(' | '),
    };
    if (!started && p.examples.total > 0) {
      bar.start(p.examples.total, p.examples.done, payload);
      started = true;
    } else if (started) {
      bar.update(p.examples.done, payload);
    }
  };
  const result = handle.result().then(
    () => 'done' as const,
    (err: unknown) => {
      throw err;
    },
  );
  let finished = false;
  result.then(
    () => (finished = true),
    () => (finished = true),
  );
  let checked = Date.now();
  while (!finished) {
    try {
      update(await withDeadline(handle.query(sweepProgressQuery), HEALTH_EVERY_MS));
    } catch {
      // the workflow may be between runs (continue-as-new) or finished; poll again
    }
    if (Date.now() - checked >= HEALTH_EVERY_MS) {
      // a stopped service otherwise shows as a progress bar that never moves
      await session.checkHealth(`following sweep ${sweepId} (it is durable: \`npm run twice -- status ${sweepId} --follow\` picks it up again)`);
      checked = Date.now();
    }
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
  }
  process.removeListener('SIGINT', onSigint);
  try {
    const final = await handle.query(sweepProgressQuery).catch(() => null);
    if (final) update(final);
  } finally {
    if (started) bar.stop();
  }
  await result;
  return 'done';
}

async function printReport(session: Session, sweepId: string, reportDir?: string) {
  const report = await loadSweepReport(session.db, sweepId);
  out(renderTerminal(report));
  const dir = reportDir ? callerPath(reportDir) : join(repoRoot, 'reports', sweepId);
  const files = await writeReport(report, dir);
  const shown = [files.markdown, files.html, files.json].map((f) => relative(process.cwd(), f));
  out(`\nreport written to ${shown.join(', ')}`);
  return report;
}

/** Prints every missing checkpoint, tokenizer and dataset and sets exit code 1; true if any. */
function reportMissingAssets(spec: SweepSpec): boolean {
  const lines = describeMissing(specAssets(spec, loadModelCatalog(repoRoot)));
  for (const line of lines) out(line);
  if (lines.length) process.exitCode = 1;
  return lines.length > 0;
}

async function withSession<T>(start: boolean, fn: (s: Session) => Promise<T>): Promise<T> {
  const session = await openSession({ start });
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

const program = new Command()
  .name('twice')
  .description('Durable evaluation sweeps for recurrent language models (JRT-Prompt, JRT-RNN and friends).')
  .showHelpAfterError();

program
  .command('run')
  .description('run a sweep spec and follow it; Ctrl-C detaches without cancelling')
  .argument('<spec>', 'sweep spec (YAML)')
  .option('--detach', 'start the sweep and return at once')
  .option('--report <dir>', 'write report.md and report.json here (default reports/<sweep id>)')
  .option('--keep-stack', 'leave the embedded stack running when the sweep ends')
  .action(async (specFile: string, opts: { detach?: boolean; report?: string; keepStack?: boolean }) => {
    const spec = readSpec(specFile); // fail on a bad spec before starting anything
    if (reportMissingAssets(spec.spec)) return; // and on missing checkpoints or datasets
    const session = await openSession({ start: true });
    let detached = false;
    try {
      const { sweepId, handle } = await startSweep(session.client, spec);
      note(`sweep ${sweepId} started (workflow ${handle.workflowId})`);
      if (session.stackInfo?.webUrl) note(`dashboard: ${session.stackInfo.webUrl}/sweeps/${encodeURIComponent(sweepId)}`);
      if (session.stackInfo?.uiUrl) note(`Temporal UI: ${session.stackInfo.uiUrl}/namespaces/${session.namespace}/workflows`);
      if (opts.detach) {
        detached = true;
        out(sweepId);
        return;
      }
      await follow(session, handle, sweepId);
      const report = await printReport(session, sweepId, opts.report);
      // every cell of the sweep, benchmark cells included (the report's table holds recall cells)
      const links = await session.db.sweepCell.findMany({ where: { sweepId }, select: { reused: true } });
      const reused = links.filter((c) => c.reused).length;
      out(`\n${links.length} cells: ${reused} reused from earlier sweeps, ${links.length - reused} run now.`);
      const why = await explainNewCells(session.db, sweepId);
      const firstTime = why.filter((line) => line.endsWith('(first time evaluated)'));
      if (firstTime.length) out(`  ${firstTime.length} evaluated for the first time`);
      for (const line of why.filter((l) => !firstTime.includes(l))) out(`  ${line}`);
      if (report.status !== 'completed') process.exitCode = 1;
    } finally {
      const info = session.stackInfo;
      await session.close();
      if (session.startedStack && info && !detached && !opts.keepStack) {
        note('stopping the embedded stack (use --keep-stack to leave it running)');
        await stopDaemon(info);
      }
    }
  });

program
  .command('plan')
  .description('expand a spec into its cells and show which are already done')
  .argument('<spec>', 'sweep spec (YAML)')
  .action(async (specFile: string) => {
    const { spec } = readSpec(specFile);
    if (reportMissingAssets(spec)) return;
    await withSession(true, async (session) => {
      const plan = await session.client.workflow.execute<typeof planWorkflow>('planWorkflow', {
        taskQueue: ORCHESTRATOR_QUEUE,
        workflowId: `plan/${spec.name}-${randomBytes(4).toString('hex')}`,
        args: [{ spec }],
      });
      const table = textTable(['cell key', 'model', 'task', 'strategy', 'examples', 'shards', 'status']);
      for (const c of plan.cells) {
        table.push([c.key.slice(0, 12), c.model, c.task, c.strategy, `${c.examplesDone}/${c.numExamples}`, `${c.shardsDone}/${c.numShards}`, c.status]);
      }
      out(table.toString());
      const done = plan.cells.filter((c) => c.status === 'done').length;
      out(`${plan.cells.length} cells: ${done} done (will be reused), ${plan.cells.length - done} to run.`);
      for (const s of plan.skipped) out(`  left out: ${s}`);
      if (session.startedStack) note('the embedded stack keeps running for the next command; `npm run twice -- stack down` stops it');
    });
  });

program
  .command('status')
  .description('list recent sweeps, or show (and --follow) one')
  .argument('[sweep]', 'sweep id, or "latest"')
  .option('--follow', 'follow it with a progress bar until it ends')
  .action(async (sweep: string | undefined, opts: { follow?: boolean }) => {
    await withSession(false, async (session) => {
      if (!sweep) {
        const sweeps = await session.db.sweep.findMany({ orderBy: { createdAt: 'desc' }, take: 20 });
        const table = textTable(['sweep', 'status', 'started', 'finished']);
        for (const s of sweeps) table.push([s.id, sweepStatusText(s.status, s.completedBy), s.createdAt.toISOString(), s.finishedAt?.toISOString() ?? '-']);
        out(sweeps.length ? table.toString() : 'no sweeps recorded yet');
        return;
      }
      const sweepId = sweep === 'latest' ? await latestSweepId(session) : sweep;
      const handle = session.client.workflow.getHandle(workflowIdOf(sweepId));
      if (opts.follow) {
        await follow(session, handle, sweepId);
        await printReport(session, sweepId);
        return;
      }
      // an ended sweep's record has the last word: its status follows its cells, which other
      // sweeps may have completed after it ended
      const s = await session.db.sweep.findUnique({ where: { id: sweepId } });
      const recorded = () =>
        out(`${sweepId}: ${sweepStatusText(s!.status, s!.completedBy)}${s!.finishedAt ? ` (finished ${s!.finishedAt.toISOString()})` : ''}`);
      if (s && s.status !== 'running') return recorded();
      try {
        out(statusLine(await handle.query(sweepProgressQuery)));
      } catch (err) {
        // an unknown workflow answers no query; nor does one whose run is gone from Temporal
        if (!s && !(err instanceof WorkflowNotFoundError)) throw err;
        if (!s) throw new Error(`no sweep "${sweepId}"; \`npm run twice -- status\` lists the recent ones`);
        recorded();
      }
    });
  });

program
  .command('cancel')
  .description('cancel a running sweep (finished cells stay recorded and will be reused)')
  .argument('<sweep>', 'sweep id, or "latest"')
  .action(async (sweep: string) => {
    await withSession(false, async (session) => {
      const sweepId = sweep === 'latest' ? await latestSweepId(session) : sweep;
      const handle = session.client.workflow.getHandle(workflowIdOf(sweepId));
      const described = await handle.describe().catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) throw new Error(`no sweep "${sweepId}"; \`npm run twice -- status\` lists the recent ones`);
        throw err;
      });
      if (described.status.name !== 'RUNNING') {
        throw new Error(`sweep ${sweepId} has already ended (${described.status.name.toLowerCase()}); there is nothing to cancel`);
      }
      await handle.cancel();
      out(`cancellation requested for ${sweepId}`);
    });
  });

program
  .command('report')
  .description("print a sweep's results table and Pareto frontier and write report files")
  .argument('[sweep]', 'sweep id, or "latest"', 'latest')
  .option('--out <dir>', 'directory for report.md and report.json')
  .action(async (sweep: string, opts: { out?: string }) => {
    await withSession(false, async (session) => {
      const sweepId = sweep === 'latest' ? await latestSweepId(session) : sweep;
      await printReport(session, sweepId, opts.out);
    });
  });

program
  .command('serve')
  .description('serve the web dashboard (the embedded stack already serves one: see `twice stack status`)')
  .option('--host <host>', 'address to bind (default TWICE_SERVE_HOST or 127.0.0.1)')
  .option('--port <port>', 'port (default TWICE_SERVE_PORT, or a free one)', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--port must be an integer in [0, 65535], got "${v}"`);
    return n;
  })
  .action(async (opts: { host?: string; port?: number }) => {
    await serve(opts);
  });

program
  .command('models')
  .description('list the models a spec may name: weights present, parameters, state size')
  .action(() => printModels(out, note));

program
  .command('pull')
  .description('download the checkpoints, tokenizers and datasets a spec, model or dataset needs (Hugging Face hub)')
  .argument('<target>', 'a spec file, a catalog model name, a recall task name or a dataset id')
  .option('--all', 'also re-check what is already present')
  .action((target: string, opts: { all?: boolean }) => {
    process.exitCode = pull(target, opts, out);
  });

program
  .command('bigrams')
  .description('training bigram counts for the perplexity task')
  .command('build')
  .description("count a corpus's bigrams once (content-addressed, in TWICE_CACHE/bigrams); prints the table and documents/s")
  .argument('<corpus>', 'synthetic:<language> (its training stream), a .jsonl of {"text"} or {"ids"} documents, or an .npz of ids and offsets')
  .option('--tokenizer <spec>', 'tokenizer for "text" documents (e.g. synthetic-v1, or a tokenizer.json folder)')
  .option('--out <dir>', 'write the table here instead of the cache')
  .action((corpus: string, opts: { tokenizer?: string; out?: string }) => {
    process.exitCode = buildBigrams(corpus, opts);
  });

registerScheduleCommands(program, withSession);

program
  .command('slack')
  .description('run the Slack app (HTTP mode); docs/env.md lists its settings')
  .action(() => runSlackApp());

const stack = program.command('stack').description('the embedded stack (PostgreSQL, Temporal dev server, workers)');
stack
  .command('up')
  .description('start it in the background')
  .action(async () => {
    await withSession(true, async (session) => {
      const info = session.stackInfo;
      out(
        info
          ? `stack up: dashboard ${info.webUrl ?? '-'}, temporal ${info.temporalAddress}, ui ${info.uiUrl ?? '-'}, db ${info.databaseUrl}`
          : 'using external services',
      );
    });
  });
stack
  .command('down')
  .description('stop it')
  .action(async () => {
    const { stateDir } = loadEnv();
    const info = readStackInfo(stateDir);
    if (!info) {
      // a daemon that died (SIGKILL) may have left servers behind: stop those it started
      const stopped = await recoverStaleStack(stateDir, note);
      out(stopped.length ? `no embedded stack daemon was running; stopped ${stopped.length} process(es) it left behind` : 'no embedded stack is running');
      return;
    }
    await stopDaemon(info);
    out('stack stopped');
  });
stack
  .command('status')
  .description('say whether it runs, and where')
  .action(() => {
    const info = readStackInfo(loadEnv().stateDir);
    out(info ? JSON.stringify(info, null, 2) : 'no embedded stack is running');
  });

/** An error's message without Prisma's code frame (it quotes our source): its last line says why. */
function oneLine(e: Error): string {
  if (!e.name.startsWith('PrismaClient')) return e.message;
  return (
    e.message
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .at(-1) ?? e.name
  );
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof SpecError) {
    note(err.message);
    process.exit(2);
  }
  // a failed workflow wraps the reason (activity failure, then its cause): show the whole chain
  const chain: string[] = [];
  for (let e: unknown = err; e instanceof Error && chain.length < 5; e = e.cause) chain.push(oneLine(e));
  note(`twice: ${chain.length ? chain.join(': ') : String(err)}`);
  process.exit(1);
}
