// `twice schedule ...`: nightly sweeps on Temporal Schedules (workers/lib/schedules.ts).
// twice.ts hands in how to open a session, so these commands reach the same stack as the rest.
import { type Command, InvalidArgumentError } from 'commander';
import { textTable } from './lib/report';
import {
  OVERLAP_POLICIES,
  createSchedule,
  deleteSchedule,
  describeSchedule,
  listSchedules,
  parseScheduleSettings,
  pauseSchedule,
  triggerSchedule,
  unpauseSchedule,
} from './lib/schedules';
import { readSpec } from './lib/sweeps';
import { type Session } from './lib/session';

type WithSession = <T>(start: boolean, fn: (s: Session) => Promise<T>) => Promise<T>;

const out = (line = '') => process.stdout.write(`${line}\n`);

function alphaArg(value: string): number {
  const a = Number(value);
  if (!(a > 0 && a < 1)) throw new InvalidArgumentError(`expected a number in (0, 1), got "${value}"`);
  return a;
}

export function registerScheduleCommands(program: Command, withSession: WithSession) {
  const schedule = program.command('schedule').description('nightly sweeps on Temporal Schedules');

  schedule
    .command('create')
    .description('schedule a spec; the spec is stored by digest, so later edits to the file do not change what runs')
    .argument('<id>', 'schedule id (lowercase letters, digits, dashes)')
    .argument('<spec>', 'sweep spec (YAML)')
    .option('--cron <expr>', 'cron expression, 5 fields (e.g. "0 2 * * *")')
    .option('--every <duration>', 'an interval instead of a cron expression (e.g. 6h)')
    .option('--tz <zone>', 'IANA time zone of the cron expression', 'UTC')
    .option('--overlap <policy>', `when a night is still running: ${Object.keys(OVERLAP_POLICIES).join(', ')}`, 'skip')
    .option('--catchup <duration>', 'how late a missed run may still start (e.g. 1h)', '1h')
    .option('--alpha <p>', 'family-wise significance level for regressions (Holm-corrected)', alphaArg, 0.05)
    .option('--baseline <sweep>', 'a pinned sweep every night is compared with')
    .option('--paused', 'create it paused')
    .action(
      async (
        id: string,
        specFile: string,
        o: { cron?: string; every?: string; tz: string; overlap: string; catchup: string; alpha: number; baseline?: string; paused?: boolean },
      ) => {
        const spec = readSpec(specFile);
        // settings are checked before anything is started or reached
        const settings = parseScheduleSettings({
          id,
          cron: o.cron,
          every: o.every,
          timezone: o.tz,
          overlap: o.overlap as keyof typeof OVERLAP_POLICIES,
          catchupWindow: o.catchup,
          alpha: o.alpha,
          baseline: o.baseline ?? null,
          paused: Boolean(o.paused),
        });
        await withSession(true, async (session) => {
          const created = await createSchedule(session.client, spec, settings);
          out(`schedule ${created.scheduleId} created: spec ${spec.spec.name} (digest ${created.specDigest.slice(0, 12)})`);
        });
      },
    );

  schedule
    .command('list')
    .description('list the schedules')
    .action(async () => {
      await withSession(false, async (session) => {
        const all = await listSchedules(session.client);
        const table = textTable(['schedule', 'spec', 'digest', 'when', 'state', 'next run']);
        for (const s of all) {
          table.push([s.id, s.specName ?? '-', s.specDigest?.slice(0, 12) ?? '-', s.calendar, s.paused ? 'paused' : 'active', s.nextRun?.toISOString() ?? '-']);
        }
        out(all.length ? table.toString() : 'no schedules');
      });
    });

  schedule
    .command('describe')
    .description("a schedule's settings, state and recent runs")
    .argument('<id>')
    .action(async (id: string) => {
      await withSession(false, async (session) => {
        const d = await describeSchedule(session.client, id);
        out(`${d.id}: ${d.paused ? 'paused' : 'active'}${d.note ? ` (${d.note})` : ''}`);
        out(`  spec        ${d.specName ?? '-'} from ${d.specFile ?? '-'}, digest ${d.specDigest ?? '-'}`);
        out(`  when        ${d.calendar}; next ${d.nextRun?.toISOString() ?? '-'}`);
        out(`  policies    overlap ${d.overlap}, catch-up window ${d.catchupWindowMs / 1000}s`);
        out(`  regressions alpha ${d.alpha ?? '-'} (Holm), baseline ${d.baseline ?? 'none'}`);
        out(`  runs        ${d.actionsTaken} started, ${d.skippedOverlap} skipped (overlap), ${d.missedCatchup} missed (catch-up)`);
        for (const w of d.runningWorkflowIds) out(`  running     ${w}`);
        for (const r of d.recent.slice(-5)) out(`  recent      ${r.scheduledAt.toISOString()} ${r.workflowId}`);
      });
    });

  for (const [name, description, fn] of [
    ['pause', 'stop triggering until unpaused', pauseSchedule],
    ['unpause', 'resume triggering', unpauseSchedule],
    ['trigger', 'run it now (the overlap policy still applies)', triggerSchedule],
    ['delete', 'remove it (running nights keep going)', deleteSchedule],
  ] as const) {
    schedule
      .command(name)
      .description(description)
      .argument('<id>')
      .action(async (id: string) => {
        await withSession(false, async (session) => {
          await fn(session.client, id);
          out(`schedule ${id}: ${name === 'trigger' ? 'triggered' : `${name}d`}`);
        });
      });
  }
}
