// Nightly sweeps as Temporal Schedules: the server keeps the calendar, the overlap policy and the
// catch-up window, so no process of ours has to stay up to fire a cron. Each schedule's action
// starts nightlyWorkflow with the spec as it was read at creation (text, parsed form and digest):
// editing the YAML afterwards changes nothing until the schedule is created anew. The CLI
// (`twice schedule ...`) and the Slack app share these operations.
import {
  type Client,
  ScheduleAlreadyRunning,
  type ScheduleDescription,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type ScheduleSpec,
} from '@temporalio/client';
import { z } from 'zod';
import { ORCHESTRATOR_QUEUE } from '../../workflows/contract';
import { type NightlyWorkflowInput } from '../../workflows/messages';
import type { nightlyWorkflow } from '../../workflows/nightly';
import { digestOf } from '../../workflows/sweep-spec';
import { gitSha, readSpec, type SpecFile } from './sweeps';

export const OVERLAP_POLICIES = {
  skip: ScheduleOverlapPolicy.SKIP,
  'buffer-one': ScheduleOverlapPolicy.BUFFER_ONE,
  'buffer-all': ScheduleOverlapPolicy.BUFFER_ALL,
  'cancel-other': ScheduleOverlapPolicy.CANCEL_OTHER,
  'terminate-other': ScheduleOverlapPolicy.TERMINATE_OTHER,
  'allow-all': ScheduleOverlapPolicy.ALLOW_ALL,
} as const;
export type OverlapName = keyof typeof OVERLAP_POLICIES;

const duration = z.string().regex(/^\d+(ms|s|m|h|d)$/, 'expected a duration such as 90s, 30m, 6h or 1d');

/** What a schedule is made from besides its spec file. Checked before anything reaches Temporal. */
export const ScheduleSettings = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected lowercase letters, digits and dashes (at most 63)'),
    cron: z.string().trim().min(1).optional(),
    every: duration.optional(),
    timezone: z.string().min(1).default('UTC'),
    overlap: z.enum(Object.keys(OVERLAP_POLICIES) as [OverlapName, ...OverlapName[]]).default('skip'),
    catchupWindow: duration.default('1h'),
    alpha: z.number().gt(0).lt(1).default(0.05),
    baseline: z.string().min(1).nullable().default(null),
    paused: z.boolean().default(false),
    note: z.string().max(500).optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (Boolean(s.cron) === Boolean(s.every)) {
      ctx.addIssue({ code: 'custom', path: ['cron'], message: 'give exactly one of a cron expression or an interval (every)' });
    }
    if (s.cron && s.cron.split(/\s+/).length !== 5) {
      ctx.addIssue({ code: 'custom', path: ['cron'], message: `expected 5 fields (minute hour day month weekday), got "${s.cron}"` });
    }
    if (!Intl.supportedValuesOf('timeZone').includes(s.timezone) && s.timezone !== 'UTC') {
      ctx.addIssue({ code: 'custom', path: ['timezone'], message: `unknown IANA time zone "${s.timezone}"` });
    }
  });
export type ScheduleSettingsInput = z.input<typeof ScheduleSettings>;

export class ScheduleSettingsError extends Error {}

export function parseScheduleSettings(input: ScheduleSettingsInput) {
  const parsed = ScheduleSettings.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(settings)'}: ${i.message}`);
    throw new ScheduleSettingsError(`invalid schedule settings:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** The memo every schedule of ours carries, so list and describe need not decode the action. */
const ScheduleMemo = z
  .object({
    twice: z.literal(1),
    specName: z.string(),
    specFile: z.string(),
    specDigest: z.string(),
    /** the calendar as given (the server keeps cron only in its structured form) */
    when: z.string(),
    alpha: z.number(),
    baseline: z.string().nullable(),
  })
  .strict();
type ScheduleMemo = z.infer<typeof ScheduleMemo>;

export const nightlyWorkflowIdOf = (scheduleId: string) => `nightly/${scheduleId}`;

export async function createSchedule(client: Client, spec: string | SpecFile, raw: ScheduleSettingsInput) {
  const settings = parseScheduleSettings(raw);
  const file = typeof spec === 'string' ? readSpec(spec) : spec;
  const specDigest = digestOf(file.spec);
  const input: NightlyWorkflowInput = {
    scheduleId: settings.id,
    specFile: file.file,
    specYaml: file.text,
    spec: file.spec,
    specDigest,
    gitSha: gitSha(),
    settings: { alpha: settings.alpha, baselineSweepId: settings.baseline },
  };
  const memo: ScheduleMemo = {
    twice: 1,
    specName: file.spec.name,
    specFile: file.file,
    specDigest,
    when: `${settings.cron ? `cron "${settings.cron}"` : `every ${settings.every}`} (${settings.timezone})`,
    alpha: settings.alpha,
    baseline: settings.baseline,
  };
  const scheduleSpec: ScheduleSpec = settings.cron
    ? { cronExpressions: [settings.cron], timezone: settings.timezone }
    : { intervals: [{ every: settings.every as `${number}s` }], timezone: settings.timezone };
  try {
    await client.schedule.create<typeof nightlyWorkflow>({
      scheduleId: settings.id,
      spec: scheduleSpec,
      action: {
        type: 'startWorkflow',
        workflowType: 'nightlyWorkflow',
        taskQueue: ORCHESTRATOR_QUEUE,
        // the server appends the scheduled time to every run's id
        workflowId: nightlyWorkflowIdOf(settings.id),
        args: [input],
      },
      policies: {
        overlap: OVERLAP_POLICIES[settings.overlap],
        catchupWindow: settings.catchupWindow as `${number}h`,
        pauseOnFailure: false,
      },
      state: { paused: settings.paused, note: settings.note },
      memo: memo as unknown as Record<string, unknown>,
    });
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) {
      throw new Error(`a schedule "${settings.id}" exists already; delete it first to change what it runs`);
    }
    throw err;
  }
  return { scheduleId: settings.id, specDigest, settings };
}

export interface ScheduleSummary {
  id: string;
  specName: string | null;
  specDigest: string | null;
  calendar: string;
  paused: boolean;
  note: string | null;
  nextRun: Date | null;
}

function memoOf(memo: Record<string, unknown> | undefined): ScheduleMemo | null {
  const m = ScheduleMemo.safeParse(memo ?? {});
  return m.success ? m.data : null;
}

/** Our schedules (those carrying the twice memo), newest state from the server. */
export async function listSchedules(client: Client): Promise<ScheduleSummary[]> {
  const out: ScheduleSummary[] = [];
  for await (const s of client.schedule.list()) {
    const memo = memoOf(s.memo);
    if (!memo) continue;
    out.push({
      id: s.scheduleId,
      specName: memo.specName,
      specDigest: memo.specDigest,
      calendar: memo.when,
      paused: s.state.paused,
      note: s.state.note ?? null,
      nextRun: s.info.nextActionTimes[0] ?? null,
    });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

export interface ScheduleDetails extends ScheduleSummary {
  specFile: string | null;
  alpha: number | null;
  baseline: string | null;
  overlap: string;
  catchupWindowMs: number;
  running: number;
  actionsTaken: number;
  skippedOverlap: number;
  missedCatchup: number;
  runningWorkflowIds: string[];
  recent: Array<{ scheduledAt: Date; workflowId: string }>;
}

export async function describeSchedule(client: Client, id: string): Promise<ScheduleDetails> {
  let d: ScheduleDescription;
  try {
    d = await client.schedule.getHandle(id).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw new Error(`no schedule "${id}"`);
    throw err;
  }
  const memo = memoOf(d.memo);
  return {
    id,
    specName: memo?.specName ?? null,
    specDigest: memo?.specDigest ?? null,
    specFile: memo?.specFile ?? null,
    alpha: memo?.alpha ?? null,
    baseline: memo?.baseline ?? null,
    calendar: memo?.when ?? '-',
    paused: d.state.paused,
    note: d.state.note ?? null,
    nextRun: d.info.nextActionTimes[0] ?? null,
    running: d.info.runningActions.length,
    overlap: String(d.policies.overlap),
    catchupWindowMs: d.policies.catchupWindow,
    actionsTaken: d.info.numActionsTaken,
    skippedOverlap: d.info.numActionsSkippedOverlap,
    missedCatchup: d.info.numActionsMissedCatchupWindow,
    runningWorkflowIds: d.info.runningActions.map((a) => a.workflow.workflowId),
    recent: d.info.recentActions.map((a) => ({ scheduledAt: a.scheduledAt, workflowId: a.action.workflow.workflowId })),
  };
}

async function onSchedule(client: Client, id: string, fn: (h: ReturnType<Client['schedule']['getHandle']>) => Promise<void>) {
  try {
    await fn(client.schedule.getHandle(id));
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw new Error(`no schedule "${id}"`);
    throw err;
  }
}

export const pauseSchedule = (client: Client, id: string, note = 'paused from twice') => onSchedule(client, id, (h) => h.pause(note));
export const unpauseSchedule = (client: Client, id: string, note = 'unpaused from twice') => onSchedule(client, id, (h) => h.unpause(note));
/**
 * Runs the action now under the schedule's own overlap policy: the SDK's trigger() defaults to
 * allow-all, which would start a second night beside a running one.
 */
export const triggerSchedule = (client: Client, id: string) => onSchedule(client, id, async (h) => h.trigger((await h.describe()).policies.overlap));
export const deleteSchedule = (client: Client, id: string) => onSchedule(client, id, (h) => h.delete());
