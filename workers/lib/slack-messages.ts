// What the Slack app says: progress lines, a finished sweep's summary (results table, dashboard
// link), a night's summary with its regressions, and the Pareto chart it uploads. Block Kit keeps
// a section's text under 3000 characters and a message under 50 blocks; every message also
// carries plain text for notifications.
import { type SweepProgress, type NightlySummary } from '../../workflows/messages';
import { type SweepReport, textTable } from './report';

export interface SlackMessage {
  text: string;
  blocks: Array<Record<string, unknown>>;
}

const SECTION_LIMIT = 2900;
const pct = (x: number | null) => (x === null ? '-' : (100 * x).toFixed(1));

/** A fenced block cut to Slack's section limit, saying how much was left out. */
function preformatted(lines: string[]): string {
  let body = '';
  let shown = 0;
  for (const line of lines) {
    if (body.length + line.length + 60 > SECTION_LIMIT) break;
    body += `${line}\n`;
    shown += 1;
  }
  const cut = lines.length - shown;
  return `\`\`\`${body}\`\`\`${cut ? `\n_${cut} more lines in the full report_` : ''}`;
}

export const sweepUrl = (webUrl: string | null, sweepId: string) => (webUrl ? `${webUrl.replace(/\/+$/, '')}/sweeps/${encodeURIComponent(sweepId)}` : null);

function linkBlock(url: string | null): Array<Record<string, unknown>> {
  if (!url) return [];
  return [{ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open the dashboard' }, url }] }];
}

export function progressLine(p: SweepProgress): string {
  return (
    `${p.phase}: cells ${p.cells.done}/${p.cells.total} (${p.cells.reused} reused, ${p.cells.failed} failed), ` +
    `examples ${p.examples.done}/${p.examples.total}${p.currentModel ? `, now ${p.currentModel}` : ''}`
  );
}

export function sweepSummary(report: SweepReport, webUrl: string | null): SlackMessage {
  const table = textTable(['model', 'task', 'strategy', 'acc %', 'n', 'cell']);
  for (const c of report.cells) {
    table.push([c.model, c.taskLabel, c.strategy, c.status === 'done' ? pct(c.accuracy) : c.status, String(c.examples), c.reused ? 'reused' : 'ran']);
  }
  const frontier = report.pareto.filter((p) => p.onFrontier).map((p) => `${p.model} / ${p.strategy}`);
  const failed = report.cells.filter((c) => c.status === 'failed').length;
  const url = sweepUrl(webUrl, report.sweepId);
  const text = `Sweep ${report.sweepId} ${report.status}: ${report.cells.length} cells, ${failed} failed`;
  return {
    text,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: `Sweep ${report.sweepId}: ${report.status}`.slice(0, 150) } },
      {
        type: 'section',
        fields: [
          { type: 'mrkdwn', text: `*cells*\n${report.cells.length} (${report.cells.filter((c) => c.reused).length} reused, ${failed} failed)` },
          { type: 'mrkdwn', text: `*Pareto frontier*\n${frontier.join(', ') || '-'}` },
        ],
      },
      { type: 'section', text: { type: 'mrkdwn', text: preformatted(table.toString().split('\n')) } },
      ...linkBlock(url),
    ],
  };
}

export function nightlySummaryMessage(scheduleId: string, s: NightlySummary, webUrl: string | null): SlackMessage {
  const flagged = s.regressions.length;
  const text = flagged ? `Night ${s.sweepId} of ${scheduleId}: ${flagged} regression(s)` : `Night ${s.sweepId} of ${scheduleId}: ${s.status}, no regressions`;
  const regressionLines = s.regressions.map(
    (r) =>
      `${r.against === 'previous' ? 'vs last night' : 'vs baseline'} (${r.referenceSweepId}): ${r.model} / ${r.task} / ${r.strategy} ` +
      `${pct(r.accuracyBefore)}% -> ${pct(r.accuracyAfter)}%, ${r.flippedToWrong} right->wrong, ${r.flippedToRight} wrong->right, ` +
      `Holm p=${r.pAdjusted.toPrecision(2)}`,
  );
  const compared = [
    s.previousSweepId ? `${s.compared.previous} cells vs last night (${s.previousSweepId})` : 'no earlier night',
    s.baselineSweepId ? `${s.compared.baseline} cells vs baseline (${s.baselineSweepId})` : 'no baseline pinned',
  ].join('; ');
  return {
    text,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: (flagged ? `Regression: ${scheduleId}` : `Nightly: ${scheduleId}`).slice(0, 150) } },
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `*${s.sweepId}* ${s.status}: ${s.cells.total} cells, ${s.cells.ran} ran, ${s.cells.reused} reused.\nCompared: ${compared}.`,
        },
      },
      ...(flagged ? [{ type: 'section', text: { type: 'mrkdwn', text: preformatted(regressionLines) } }] : []),
      ...(s.why.length ? [{ type: 'section', text: { type: 'mrkdwn', text: `*What ran and why*\n${preformatted(s.why)}` } }] : []),
      ...linkBlock(sweepUrl(webUrl, s.sweepId)),
    ],
  };
}
