// The dashboard's pages, rendered on the server with every value escaped (workers/lib/html.ts).
// Charts are Vega-Lite specs that the browser draws with vega-embed (hover shows the cell);
// live parts are updated by /assets/app.js.
import { PARETO_AXIS_LABEL } from '../../../workflows/pareto';
import { CELL_KEY_FIELDS } from '../../../workflows/sweep-spec';
import type { FlippedExample, SweepComparison } from '../compare';
import { html, scriptJson, trusted, type Markup } from '../html';
import { sweepCharts, taskAnalyticChart, type SweepChart } from '../report/charts';
import { figure3Summary, intervalSentence, msInterval, num, pct, pctInterval, signedInterval, sweepStatusText } from '../report/render';
import type { SweepReport } from '../report/types';
import type { ExamplePage, SweepSummary, loadCell } from './data';

// the migration that added example_results.prompt: rows recorded before it have only the digest
const PROMPT_MIGRATION = 'migration 20261129030000_example_prompts';

const STYLE = `body{font:14px system-ui,sans-serif;margin:0;color:#1f2328}header{background:#24292f;color:#fff;padding:.6em 1.5em}
header a{color:#fff;margin-right:1.5em;text-decoration:none}main{padding:1em 1.5em;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border-bottom:1px solid #d0d7de;padding:.3em .7em;text-align:left;vertical-align:top}
th{background:#f6f8fa}.num{text-align:right;font-variant-numeric:tabular-nums}.wrong{background:#fff5f5}.bad{color:#cf222e}
pre{white-space:pre-wrap;margin:0;max-width:50em}.chart{margin:1em 0}button{margin-right:.4em}progress{width:12em}`;

export function layout(title: string, body: Markup): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title} · twice</title><link rel="icon" href="data:,"><style>${STYLE}</style>
<script src="/assets/vega.min.js"></script><script src="/assets/vega-lite.min.js"></script><script src="/assets/vega-embed.min.js"></script>
<script type="module" src="/assets/app.js"></script></head>
<body><header><a href="/"><b>twice</b></a><a href="/">Sweeps</a><a href="/compare">Compare</a></header>
<main>${body}</main></body></html>`.value;
}

const eta = (s: number | null) => (s === null ? '-' : s < 90 ? `${s} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

export function sweepRow(s: SweepSummary): Markup {
  return html`<tr data-sweep="${s.id}">
<td><a href="/sweeps/${encodeURIComponent(s.id)}">${s.id}</a></td><td class="status">${sweepStatusText(s.status, s.completedBy)}</td>
<td><progress max="${s.examples.total}" value="${s.examples.done}"></progress> ${s.examples.done}/${s.examples.total}</td>
<td class="num">${s.cells.done}/${s.cells.total} (${s.cells.reused} reused)</td>
<td class="num eta">${eta(s.etaSeconds)}</td>
<td>${s.failures.length ? html`<details><summary class="bad">${s.failures.length} failed</summary><ul>${s.failures.map((f) => html`<li>${f.what}: <code>${f.error}</code></li>`)}</ul></details>` : '-'}</td>
<td>${s.createdAt.replace('T', ' ').slice(0, 19)}</td>
<td>${s.status === 'running' ? html`<button data-action="cancel" data-sweep="${s.id}">Cancel</button>` : ''}<button data-action="rerun" data-sweep="${s.id}">Re-run</button></td>
</tr>`;
}

export function sweepsTable(sweeps: SweepSummary[]): Markup {
  return html`<table id="sweeps"><thead><tr><th>sweep</th><th>status</th><th>examples</th><th>cells done</th><th>ETA</th><th>failures</th><th>started</th><th></th></tr></thead>
<tbody>${sweeps.map(sweepRow)}</tbody></table>`;
}

export function sweepsPage(sweeps: SweepSummary[]): string {
  return layout(
    'Sweeps',
    html`<h1>Sweeps</h1><p id="live">live updates: connecting…</p>${sweeps.length ? sweepsTable(sweeps) : html`<p>No sweeps recorded yet: <code>twice run specs/default.yaml</code>.</p>`}<p id="action-result"></p>`,
  );
}

/** The averaged frontier's other axes: drawn in the 'pareto' chart's place when chosen. */
const PARETO_ALTERNATIVES = ['pareto-flops', 'pareto-state'];

/**
 * A Pareto chart (averaged, or one task's) with an axis selector: each axis's spec rides along,
 * and the browser script redraws the chart from the chosen one (no round trip).
 */
function paretoChart(report: SweepReport, measured: SweepChart, charts: SweepChart[]): Markup {
  const analytic = (axis: 'flops' | 'state') =>
    measured.task === undefined ? charts.find((c) => c.name === `pareto-${axis}`) : taskAnalyticChart(report, measured.task, axis);
  const axes = [
    { name: 'measured', label: 'measured throughput', chart: measured },
    { name: 'flops', label: 'analytic FLOPs', chart: analytic('flops') },
    { name: 'state', label: 'state bytes', chart: analytic('state') },
  ].filter((a): a is { name: string; label: string; chart: SweepChart } => a.chart !== undefined);
  return html`<div class="chart" data-chart="${measured.name}" data-axes>
<label>x axis: <select class="axis">${axes.map((a) => html`<option value="${a.name}">${a.label}</option>`)}</select></label>
${axes.map((a) => html`<script type="application/json" data-axis="${a.name}">${scriptJson(a.chart.spec)}</script>`)}
<div class="view"></div>
</div>`;
}

export function sweepPage(report: SweepReport, slices: Map<string, Array<{ slice: string; perplexity: number; tokens: number }>>): string {
  const charts = sweepCharts(report);
  const hidden = [...new Set(report.cells.filter((c) => c.perplexityHidden).map((c) => c.model))];
  const recallKeys = new Set(report.cells.map((c) => c.key));
  const sliceNames = [...new Set([...slices.entries()].filter(([key]) => recallKeys.has(key)).flatMap(([, s]) => s.map((x) => x.slice)))].sort((a, b) =>
    a === 'ar_hit' ? -1 : b === 'ar_hit' ? 1 : a === 'other' ? -1 : b === 'other' ? 1 : a.localeCompare(b),
  );
  return layout(
    `Sweep ${report.sweepId}`,
    html`<h1>Sweep ${report.sweepId}</h1>
<p>Spec <code>${report.name}</code>, status <b>${sweepStatusText(report.status, report.completedBy)}</b>, started ${report.createdAt}${report.finishedAt ? `, finished ${report.finishedAt}` : ''}.
 <a href="/compare?base=${encodeURIComponent(report.sweepId)}">compare with another sweep</a></p>
${charts
  .filter((c) => !PARETO_ALTERNATIVES.includes(c.name))
  .map((c) =>
    c.name === 'pareto' || c.task !== undefined
      ? paretoChart(report, c, charts)
      : html`<div class="chart" data-chart="${c.name}"><script type="application/json">${scriptJson(c.spec)}</script></div>`,
  )}
<h2>Cells</h2>
<p>Accuracy with its 95% Wilson interval over examples.</p>
<table id="cells"><thead><tr><th>model</th><th>task</th><th>strategy</th><th>accuracy % [95% CI]</th><th class="num">n</th><th>cell</th></tr></thead><tbody>
${report.cells.map(
  (c) => html`<tr><td>${c.model}</td><td>${c.taskLabel}</td><td>${c.strategy}</td>
<td class="num">${c.status === 'done' ? pctInterval(c.accuracy, c.ci95) : html`<span class="bad" title="${c.error ?? ''}">${c.status}</span>`}</td>
<td class="num">${c.examples}</td><td><a href="/cells/${c.key}">${c.key.slice(0, 12)}</a></td></tr>`,
)}
</tbody></table>
${
  report.jrtMargins.length
    ? html`<h2>JRT margins</h2><p>Each JRT layout minus default on the same examples, pooled over tasks, 95% Newcombe interval.</p>
<table id="jrt"><thead><tr><th>model</th><th>strategy</th><th class="num">paired examples</th><th>margin, points [95% CI]</th></tr></thead><tbody>
${report.jrtMargins.map((m) => html`<tr><td>${m.model}</td><td>${m.strategy}</td><td class="num">${m.examples}</td><td class="num">${signedInterval(m.margin)}</td></tr>`)}</tbody></table>`
    : ''
}
<h2>Pareto frontier</h2>
<p>Axis: ${PARETO_AXIS_LABEL[report.paretoAxis]}. Accuracy averaged over tasks. ${intervalSentence(report.paretoInterval)}</p>
<table id="pareto"><thead><tr><th>model</th><th>strategy</th><th class="num">accuracy %</th><th class="num">${PARETO_AXIS_LABEL[report.paretoAxis]}</th><th>interval</th><th>frontier</th></tr></thead><tbody>
${report.pareto.map(
  (
    p,
  ) => html`<tr data-frontier="${p.onFrontier}" data-settled="${p.settled}"><td>${p.model}</td><td>${p.strategy}</td><td class="num">${pct(p.accuracy)}</td><td class="num">${num(p.throughput)}</td>
<td class="num">${p.throughputLo === p.throughputHi ? '-' : `${num(p.throughputLo)}–${num(p.throughputHi)}`}</td><td>${p.onFrontier ? 'on the frontier' : 'dominated'}${p.settled ? '' : ' (unsettled)'}</td></tr>`,
)}
</tbody></table>
${
  report.perplexity.length
    ? html`<h2>Perplexity task (Figure 3 protocol)</h2>
${[...new Set(report.perplexity.map((p) => p.protocol))].map((t) => html`<p class="protocol">${t}</p>`)}
<table id="perplexity"><thead><tr><th>model</th><th>task</th><th class="num">sequences</th><th class="num">ppl AR hits</th><th class="num">AR-hit tokens</th><th class="num">ppl other</th><th class="num">other tokens</th><th>cell</th></tr></thead><tbody>
${report.perplexity.map(
  (
    p,
  ) => html`<tr><td>${p.model}</td><td>${p.taskLabel}</td><td class="num">${p.sequences}</td><td class="num">${p.status === 'done' ? num(p.arHit, 2) : p.status}</td><td class="num">${p.arHitTokens}</td>
<td class="num">${num(p.other, 2)}</td><td class="num">${p.otherTokens}</td><td><a href="/cells/${p.key}">${p.key.slice(0, 12)}</a></td></tr>`,
)}
</tbody></table><p>${figure3Summary(report)}</p>`
    : ''
}
<h2>Perplexity per slice</h2>
${hidden.length ? html`<p id="slices-hidden">n/a: ${hidden.join(', ')} were trained on answers only, never on context tokens, so their prompt perplexities mean nothing and are not shown.</p>` : ''}
<table id="slices"><thead><tr><th>model</th><th>task</th><th>strategy</th>${sliceNames.map((s) => html`<th class="num">${s === 'ar_hit' ? 'AR hits' : s}</th>`)}</tr></thead><tbody>
${report.cells.map((c) => {
  const by = new Map((slices.get(c.key) ?? []).map((s) => [s.slice, s.perplexity]));
  return html`<tr><td>${c.model}</td><td>${c.taskLabel}</td><td>${c.strategy}</td>${sliceNames.map((s) => html`<td class="num">${c.perplexityHidden ? 'n/a' : num(by.get(s), 2)}</td>`)}</tr>`;
})}
</tbody></table>
${
  report.benchmarks.length
    ? html`<h2>Prefill benchmark</h2><p>Median of the timed runs beside the attention baseline timed in the same process; ms 95% CI is the order-statistic interval of the median ("-" where per-run timings were not kept).</p>
<table id="benchmark"><thead><tr><th>model</th><th>strategy</th><th class="num">batch</th><th class="num">N</th><th class="num">ms</th><th class="num">ms 95% CI</th><th class="num">tok/s</th><th>baseline</th><th class="num">baseline ms</th><th class="num">speed-up</th></tr></thead><tbody>
${report.benchmarks.map(
  (
    b,
  ) => html`<tr><td>${b.model}</td><td>${b.strategy}</td><td class="num">${b.batchSize}</td><td class="num">${b.seqLen}</td><td class="num">${(1000 * b.seconds).toFixed(2)}</td>
<td class="num">${msInterval(b.runSeconds)}</td><td class="num">${num(b.tokensPerSecond, 0)}</td><td>${b.baselineImplementation}</td><td class="num">${(1000 * b.baselineSeconds).toFixed(2)}</td><td class="num">${(b.baselineSeconds / b.seconds).toFixed(2)}x</td></tr>`,
)}
</tbody></table>`
    : ''
}`,
  );
}

type CellRow = NonNullable<Awaited<ReturnType<typeof loadCell>>>;

export function cellPage(cell: CellRow, page: ExamplePage, wrongOnly: boolean): string {
  const fields: Array<[string, unknown]> = [
    ['model', `${cell.modelName} (${cell.modelFamily})`],
    ['task', cell.taskName],
    ['strategy', cell.strategyName],
    ...CELL_KEY_FIELDS.map(([f, label]) => [label, cell[f]] as [string, unknown]),
    ['status', cell.error ? `${cell.status}: ${cell.error}` : cell.status],
  ];
  const link = (offset: number, wrong: boolean) => `/cells/${cell.key}?offset=${offset}&limit=${page.limit}${wrong ? '&wrong=1' : ''}`;
  const last = Math.max(0, Math.floor((page.total - 1) / page.limit) * page.limit);
  return layout(
    `Cell ${cell.key.slice(0, 12)}`,
    html`<h1>Cell ${cell.key.slice(0, 12)}</h1>
<p><code>${cell.key}</code>, in ${cell.sweeps.map((s, i) => html`${i ? ', ' : ''}<a href="/sweeps/${encodeURIComponent(s.sweepId)}">${s.sweepId}</a>`)}</p>
<table id="fields"><tbody>${fields.map(([k, v]) => html`<tr><th>${k}</th><td><code>${typeof v === 'string' ? v : JSON.stringify(v)}</code></td></tr>`)}</tbody></table>
<details><summary>Provenance</summary><pre>${JSON.stringify(cell.provenance, null, 2)}</pre></details>
<h2>Examples</h2>
<p>${wrongOnly ? html`Showing the ${page.total} wrong ones. <a href="${link(0, false)}">show all</a>` : html`${page.total} examples. <a id="wrong-only" href="${link(0, true)}">only the wrong ones</a>`}
 · ${page.total ? `${page.offset + 1}–${Math.min(page.total, page.offset + page.limit)} of ${page.total}` : 'none'}
 · <a href="${link(0, wrongOnly)}">first</a> <a rel="prev" href="${link(Math.max(0, page.offset - page.limit), wrongOnly)}">previous</a>
 <a rel="next" href="${link(Math.min(last, page.offset + page.limit), wrongOnly)}">next</a> <a href="${link(last, wrongOnly)}">last</a></p>
<table id="examples"><thead><tr><th class="num">id</th><th>prompt</th><th>prediction</th><th>gold</th><th>correct</th></tr></thead><tbody>
${page.examples.map(
  (e) => html`<tr class="${e.correct ? '' : 'wrong'}" data-example="${e.exampleId}"><td class="num">${e.exampleId}</td>
<td class="prompt">${
    e.prompt === null
      ? html`<code title="${e.promptDigest}">${e.promptDigest.slice(0, 12)}</code> (${e.promptTokens} tokens): prompt not stored (recorded before ${PROMPT_MIGRATION})`
      : html`<details><summary>${e.promptTokens} tokens · <code title="${e.promptDigest}">${e.promptDigest.slice(0, 12)}</code></summary><pre>${e.prompt}</pre></details>`
  }</td>
<td><pre class="prediction">${e.prediction}</pre></td><td><pre>${typeof e.gold === 'string' ? e.gold : JSON.stringify(e.gold)}</pre></td><td>${e.correct ? 'yes' : 'no'}</td></tr>`,
)}
</tbody></table>`,
  );
}

export function errorPage(status: number, message: string): string {
  return layout(String(status), html`<h1>${status}</h1><p>${message}</p>`);
}

const pValue = (p: number) => (p < 1e-4 ? p.toExponential(1) : p.toFixed(4));

export function comparePage(sweeps: Array<{ id: string }>, base: string | null, other: string | null, comparison: SweepComparison | null): string {
  const options = (selected: string | null) =>
    sweeps.map((s) => html`<option value="${s.id}" ${trusted(s.id === selected ? 'selected' : '')}>${s.id}</option>`);
  return layout(
    'Compare',
    html`<h1>Compare two sweeps</h1>
<form method="get" action="/compare"><label>base <select name="base">${options(base)}</select></label>
 <label>other <select name="other">${options(other)}</select></label> <button type="submit">Compare</button></form>
${
  comparison
    ? html`<p>Cells matched by model, task and strategy (with their parameters); per cell the examples whose outcome flipped,
the exact McNemar test and its Holm adjustment over the ${comparison.cells.length} cells, most significant first.
Difference = other − base in points, 95% Newcombe interval.</p>
<table id="comparison"><thead><tr><th>model</th><th>task</th><th>strategy</th><th class="num">n</th><th class="num">base %</th><th class="num">other %</th>
<th class="num">right→wrong</th><th class="num">wrong→right</th><th>difference [95% CI]</th><th class="num">McNemar p</th><th class="num">Holm p</th><th></th></tr></thead><tbody>
${comparison.cells.map(
  (c) => html`<tr><td>${c.model}</td><td>${c.taskLabel}</td><td>${c.strategy}</td><td class="num">${c.n}</td>
<td class="num">${pct(c.baseAccuracy)}</td><td class="num">${pct(c.otherAccuracy)}</td><td class="num">${c.counts.onlyA}</td><td class="num">${c.counts.onlyB}</td>
<td class="num">${signedInterval(c.difference)}</td><td class="num">${pValue(c.pValue)}</td><td class="num">${pValue(c.adjustedP)}</td>
<td>${c.sameKey ? 'same cell' : c.counts.onlyA + c.counts.onlyB ? html`<a href="/compare/flips?base=${c.baseKey}&amp;other=${c.otherKey}">flipped examples</a>` : ''}</td></tr>`,
)}
</tbody></table>
${comparison.onlyInBase.length ? html`<p>Only in ${comparison.baseSweepId}: ${comparison.onlyInBase.join('; ')}</p>` : ''}
${comparison.onlyInOther.length ? html`<p>Only in ${comparison.otherSweepId}: ${comparison.onlyInOther.join('; ')}</p>` : ''}`
    : ''
}`,
  );
}

export function flipsPage(baseKey: string, otherKey: string, flips: { total: number; examples: FlippedExample[] }, offset: number, limit: number): string {
  const link = (o: number) => `/compare/flips?base=${baseKey}&other=${otherKey}&offset=${Math.max(0, o)}&limit=${limit}`;
  return layout(
    'Flipped examples',
    html`<h1>Flipped examples</h1>
<p><a href="/cells/${baseKey}">${baseKey.slice(0, 12)}</a> (base) against <a href="/cells/${otherKey}">${otherKey.slice(0, 12)}</a> (other):
${flips.total} examples flipped. ${offset > 0 ? html`<a rel="prev" href="${link(offset - limit)}">previous</a>` : ''} ${offset + limit < flips.total ? html`<a rel="next" href="${link(offset + limit)}">next</a>` : ''}</p>
<table id="flips"><thead><tr><th class="num">id</th><th>flip</th><th>base prediction</th><th>other prediction</th><th>gold</th></tr></thead><tbody>
${flips.examples.map(
  (e) => html`<tr><td class="num">${e.exampleId}</td><td>${e.toWrong ? 'right → wrong' : 'wrong → right'}</td>
<td><pre>${e.basePrediction}</pre></td><td><pre>${e.otherPrediction}</pre></td><td><pre>${typeof e.gold === 'string' ? e.gold : JSON.stringify(e.gold)}</pre></td></tr>`,
)}
</tbody></table>`,
  );
}
