// What the Slack app says: progress lines, a finished sweep's summary (results table, dashboard
// link), a night's summary with its regressions, and the Pareto chart it uploads. Block Kit keeps
// a section's text under 3000 characters and a message under 50 blocks; every message also
// carries plain text for notifications.
import { type SweepProgress, type NightlySummary } from '../../workflows/messages';
import { PARETO_AXIS_LABEL, type SweepReport, textTable } from './report';

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

export const sweepUrl = (webUrl: string | null, sweepId: string) =>
  webUrl ? `${webUrl.replace(/\/+$/, '')}/sweeps/${encodeURIComponent(sweepId)}` : null;

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
  const text = flagged
    ? `Night ${s.sweepId} of ${scheduleId}: ${flagged} regression(s)`
    : `Night ${s.sweepId} of ${scheduleId}: ${s.status}, no regressions`;
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

const escapeXml = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The quality-throughput chart as SVG: every (model, strategy) point, the frontier joined by a
 * line, log-scaled throughput. Null when the sweep has no points.
 */
export function paretoSvg(report: SweepReport): string | null {
  const pts = report.pareto.filter((p) => p.throughput > 0);
  if (!pts.length) return null;
  const [W, H, L, R, T, B] = [640, 400, 70, 20, 40, 50];
  const lx = pts.map((p) => Math.log10(p.throughput));
  const [x0, x1] = [Math.min(...lx) - 0.1, Math.max(...lx) + 0.1];
  const x = (v: number) => L + ((Math.log10(v) - x0) / (x1 - x0)) * (W - L - R);
  const y = (a: number) => H - B - a * (H - T - B);
  const frontier = pts.filter((p) => p.onFrontier).sort((a, b) => a.throughput - b.throughput);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${escapeXml(`Pareto frontier: ${report.sweepId}`)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    ...[0, 0.25, 0.5, 0.75, 1].map((a) => `<text x="${L - 6}" y="${y(a) + 4}" text-anchor="end">${100 * a}%</text>`),
    `<text x="${(W + L) / 2}" y="${H - 12}" text-anchor="middle">${escapeXml(PARETO_AXIS_LABEL[report.paretoAxis])} (log)</text>`,
    `<text transform="translate(16 ${(H - B + T) / 2}) rotate(-90)" text-anchor="middle">mean accuracy</text>`,
    frontier.length > 1
      ? `<polyline fill="none" stroke="#d62728" stroke-width="2" points="${frontier.map((p) => `${x(p.throughput).toFixed(1)},${y(p.accuracy).toFixed(1)}`).join(' ')}"/>`
      : '',
    ...pts.map(
      (p) =>
        `<circle cx="${x(p.throughput).toFixed(1)}" cy="${y(p.accuracy).toFixed(1)}" r="5" fill="${p.onFrontier ? '#d62728' : '#1f77b4'}"/>` +
        `<text x="${(x(p.throughput) + 7).toFixed(1)}" y="${(y(p.accuracy) - 7).toFixed(1)}">${escapeXml(`${p.model} / ${p.strategy}`)}</text>`,
    ),
    '</svg>',
  ];
  return parts.join('\n');
}
