// The nightly comparison: after a scheduled sweep, say what ran and why, and compare it cell by
// cell with the schedule's previous night and with its pinned baseline. A cell is a regression only
// when its drop is significant after Holm's correction over every cell compared (the schedule's
// alpha). Read-only on the database, so a retried activity is harmless.
import { ApplicationFailure } from '@temporalio/common';
import { compareSweeps, regressions } from '../workers/lib/compare';
import { explainNewCells } from '../workers/lib/report';
import { type NightlyRegression, type NightlySummarizeInput, type NightlySummary } from '../workflows/messages';
import { type Db } from './db';

/** Sends a finished night somewhere people read it (Slack); absent, nights are only returned. */
export type NightlyNotifier = (scheduleId: string, summary: NightlySummary) => Promise<void>;

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A night's sweep id is `<schedule>-<yyyymmdd>-<hhmmss>-<4 hex>` (workflows/nightly.ts). */
export function isNightOf(scheduleId: string, sweepId: string): boolean {
  return new RegExp(`^${escapeRegex(scheduleId)}-\\d{8}-\\d{6}-[0-9a-f]{4}$`).test(sweepId);
}

/** The schedule's latest completed night before `sweepId`, if any. */
export async function previousNight(db: Db, scheduleId: string, sweepId: string): Promise<string | null> {
  const current = await db.sweep.findUnique({ where: { id: sweepId }, select: { createdAt: true } });
  if (!current) throw new Error(`no sweep "${sweepId}" in the database`);
  const candidates = await db.sweep.findMany({
    where: { id: { startsWith: `${scheduleId}-`, not: sweepId }, status: 'completed', createdAt: { lt: current.createdAt } },
    orderBy: { createdAt: 'desc' },
    select: { id: true },
    take: 50,
  });
  return candidates.find((c) => isNightOf(scheduleId, c.id))?.id ?? null;
}

export async function summarizeNight(db: Db, input: NightlySummarizeInput): Promise<NightlySummary> {
  const sweep = await db.sweep.findUnique({ where: { id: input.sweepId }, select: { status: true } });
  if (!sweep) throw ApplicationFailure.nonRetryable(`no sweep "${input.sweepId}" in the database`, 'UnknownSweep');
  const links = await db.sweepCell.findMany({ where: { sweepId: input.sweepId }, select: { reused: true } });
  const reused = links.filter((l) => l.reused).length;
  const previousSweepId = await previousNight(db, input.scheduleId, input.sweepId);
  const baselineSweepId = input.settings.baselineSweepId === input.sweepId ? null : input.settings.baselineSweepId;
  if (baselineSweepId && !(await db.sweep.findUnique({ where: { id: baselineSweepId }, select: { id: true } }))) {
    throw ApplicationFailure.nonRetryable(`the schedule's baseline sweep "${baselineSweepId}" is not in the database`, 'UnknownSweep');
  }
  const compared = { previous: 0, baseline: 0 };
  const flagged: NightlyRegression[] = [];
  for (const [against, reference] of [
    ['previous', previousSweepId],
    ['baseline', baselineSweepId],
  ] as const) {
    if (!reference) continue;
    const comparison = await compareSweeps(db, reference, input.sweepId);
    compared[against] = comparison.cells.length;
    for (const c of regressions(comparison, input.settings.alpha)) {
      flagged.push({
        against,
        referenceSweepId: reference,
        model: c.model,
        task: c.taskLabel,
        strategy: c.strategy,
        flippedToWrong: c.counts.onlyA,
        flippedToRight: c.counts.onlyB,
        accuracyBefore: c.baseAccuracy ?? 0,
        accuracyAfter: c.otherAccuracy ?? 0,
        pAdjusted: c.adjustedP,
      });
    }
  }
  return {
    sweepId: input.sweepId,
    status: sweep.status,
    previousSweepId,
    baselineSweepId,
    cells: { total: links.length, reused, ran: links.length - reused },
    why: await explainNewCells(db, input.sweepId),
    compared,
    regressions: flagged,
  };
}

export function createNightlyActivities(db: Db, notify?: NightlyNotifier) {
  return {
    async summarizeNight(input: NightlySummarizeInput): Promise<NightlySummary> {
      const summary = await summarizeNight(db, input);
      if (notify) await notify(input.scheduleId, summary);
      return summary;
    },
  };
}
