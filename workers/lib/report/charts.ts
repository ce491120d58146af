// The report's charts as Vega-Lite specs: the quality-throughput Pareto frontier (averaged over
// tasks and per task) and the accuracy heatmap. The web dashboard draws the same specs in the
// browser (with hover); report files get them rendered to SVG by vega on the server.
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import { PARETO_AXIS_LABEL, PARETO_INTERVAL_LABEL, intervalOf, paretoFrontier, type ParetoAxis, type ParetoPoint } from '../../../workflows/pareto';
import { ANALYTIC_AXIS_LABEL, analyticFrontier, analyticSources, type AnalyticAxis } from './analytic';
import type { PanelBin, PerplexityResult, SweepReport } from './types';

/** Every axis a Pareto chart may use: measured (benchmark or eval prefill) or analytic. */
export type ChartAxis = ParetoAxis | AnalyticAxis;
export const CHART_AXIS_LABEL: Record<ChartAxis, string> = { ...PARETO_AXIS_LABEL, ...ANALYTIC_AXIS_LABEL };
const isCost = (axis: ChartAxis): axis is AnalyticAxis => axis === 'flops' || axis === 'state';

const frontierRows = (points: ParetoPoint[]) =>
  points.map((p) => {
    const point = `${p.model} · ${p.strategy}`;
    const verdict = `${p.onFrontier ? 'on the frontier' : 'dominated'}${p.settled ? '' : ' (unsettled)'}`;
    // the label becomes each mark's accessible name in the SVG: screen readers and tests read it
    return { ...p, point, verdict, label: `${point}: ${verdict}` };
  });

/**
 * Frontier points joined by a line, dominated points dimmed, the throughput interval as a bar
 * whose kind the subtitle names. On a cost axis (lower is better) the scale runs backwards, so the
 * frontier is up and to the right on every axis.
 */
export function paretoSpec(points: ParetoPoint[], axis: ChartAxis, title: string, note?: string): TopLevelSpec {
  const label = CHART_AXIS_LABEL[axis];
  const interval = intervalOf(points);
  const x = { field: 'throughput', type: 'quantitative' as const, title: label, scale: { type: 'log' as const, reverse: isCost(axis) } };
  const y = { field: 'accuracy', type: 'quantitative' as const, title: 'accuracy', axis: { format: '.0%' }, scale: { domain: [0, 1] } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: title,
      subtitle: isCost(axis)
        ? [`x axis: ${label}, lower to the right`, ...(note ? [note] : [])]
        : interval === 'none'
          ? `x axis: ${label}`
          : [`x axis: ${label}; hollow = its interval leaves its place on the frontier open`, `bars: ${PARETO_INTERVAL_LABEL[interval]}`],
    },
    width: 420,
    height: 260,
    data: { values: frontierRows(points) },
    layer: [
      {
        mark: { type: 'rule', opacity: 0.5 },
        encoding: { x: { ...x, field: 'throughputLo' }, x2: { field: 'throughputHi' }, y },
      },
      {
        transform: [{ filter: 'datum.onFrontier' }],
        mark: { type: 'line', color: '#1f6feb' },
        encoding: { x, y, order: { field: 'throughput' } },
      },
      {
        mark: { type: 'point', size: 90, filled: true, strokeWidth: 2 },
        encoding: {
          x,
          y,
          opacity: { condition: { test: 'datum.onFrontier', value: 1 }, value: 0.3 },
          fillOpacity: { condition: { test: 'datum.settled', value: 1 }, value: 0 },
          color: { field: 'model', type: 'nominal' },
          shape: { field: 'strategy', type: 'nominal' },
          description: { field: 'label' },
          tooltip: [
            { field: 'point', title: 'cell' },
            { field: 'accuracy', format: '.1%' },
            { field: 'throughput', format: isCost(axis) ? ',.4~s' : ',.1f', title: label },
            ...(interval === 'none'
              ? []
              : [
                  { field: 'throughputLo', format: ',.1f', title: 'interval from' },
                  { field: 'throughputHi', format: ',.1f', title: 'interval to' },
                ]),
            { field: 'verdict' },
          ],
        },
      },
    ],
  } as TopLevelSpec;
}

/** Accuracy per (model, strategy), one panel per task. */
export function heatmapSpec(report: SweepReport): TopLevelSpec {
  const values = report.cells
    .filter((c) => c.accuracy !== null)
    .map((c) => ({
      model: c.model,
      task: c.taskLabel,
      strategy: c.strategy,
      accuracy: c.accuracy,
      lo: c.ci95?.lo ?? null,
      hi: c.ci95?.hi ?? null,
      examples: c.examples,
      key: c.key,
    }));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Accuracy: model × task × strategy', subtitle: 'colour = accuracy; hover for the 95% Wilson interval' },
    data: { values },
    facet: { column: { field: 'task', type: 'nominal', title: null } },
    spec: {
      width: { step: 80 },
      height: { step: 28 },
      layer: [
        {
          mark: 'rect',
          encoding: {
            x: { field: 'strategy', type: 'nominal', title: null },
            y: { field: 'model', type: 'nominal', title: null },
            color: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1], scheme: 'viridis' }, legend: { format: '.0%' } },
            tooltip: [
              { field: 'model' },
              { field: 'task' },
              { field: 'strategy' },
              { field: 'accuracy', format: '.1%' },
              { field: 'lo', format: '.1%', title: '95% CI low' },
              { field: 'hi', format: '.1%', title: '95% CI high' },
              { field: 'examples' },
            ],
          },
        },
        {
          mark: { type: 'text', fontSize: 10 },
          encoding: {
            x: { field: 'strategy', type: 'nominal' },
            y: { field: 'model', type: 'nominal' },
            text: { field: 'accuracy', format: '.0%' },
            color: { condition: { test: 'datum.accuracy > 0.6', value: 'black' }, value: 'white' },
          },
        },
      ],
    },
  } as TopLevelSpec;
}

export const FIGURE3_PANELS: Array<{ panel: PanelBin['panel']; name: string; title: string; x: string }> = [
  { panel: 'recall-freq', name: 'fig3-recall-frequency', title: 'AR hits by training frequency', x: 'bigram count in training (bin start)' },
  { panel: 'recall-dist', name: 'fig3-recall-distance', title: 'AR hits by distance', x: 'tokens since the bigram last occurred (bin start)' },
  { panel: 'other-freq', name: 'fig3-other-frequency', title: 'Other by training frequency', x: 'bigram count in training (bin start)' },
];

/** One Figure 3 panel: perplexity per bin, one line per model (log y: the models differ by
 * orders of magnitude on recall). Bins are ordinal, in the order of their lower edges. */
export function figure3Spec(results: PerplexityResult[], panel: (typeof FIGURE3_PANELS)[number]): TopLevelSpec {
  const values = results.flatMap((r) =>
    r.panels
      .filter((p) => p.panel === panel.panel)
      .map((p) => ({
        model: r.model,
        task: r.taskLabel,
        bin: p.bin,
        lo: p.lo,
        perplexity: p.perplexity,
        tokens: p.tokens,
        label: `${r.model} · ${p.bin}: ${p.perplexity.toFixed(2)}`,
      })),
  );
  const order = [...new Map(values.map((v) => [v.bin, v.lo])).entries()].sort((a, b) => a[1] - b[1]).map(([bin]) => bin);
  const x = { field: 'bin', type: 'ordinal' as const, sort: order, title: panel.x };
  const y = { field: 'perplexity', type: 'quantitative' as const, scale: { type: 'log' as const }, title: 'perplexity' };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `Figure 3: ${panel.title}`, subtitle: 'perplexity task, scored tokens only; hover for the token count' },
    width: 320,
    height: 220,
    data: { values },
    layer: [
      { mark: { type: 'line' }, encoding: { x, y, color: { field: 'model', type: 'nominal' } } },
      {
        mark: { type: 'point', filled: true, size: 60 },
        encoding: {
          x,
          y,
          color: { field: 'model', type: 'nominal' },
          description: { field: 'label' },
          tooltip: [{ field: 'model' }, { field: 'bin' }, { field: 'perplexity', format: ',.2f' }, { field: 'tokens', format: ',d' }],
        },
      },
    ],
  } as TopLevelSpec;
}

export interface SweepChart {
  name: string;
  title: string;
  spec: TopLevelSpec;
  /** the task label of a per-task Pareto chart */
  task?: string;
}

/**
 * A per-task frontier on an analytic axis. The report files leave these out (one per task and
 * axis would swamp report.md); the dashboard offers them in the per-task charts' axis selectors.
 */
export function taskAnalyticChart(report: SweepReport, task: string, axis: AnalyticAxis): SweepChart | undefined {
  const points = analyticFrontier(
    report,
    axis,
    report.cells.filter((c) => c.taskLabel === task),
  );
  if (!points.length) return undefined;
  const label = ANALYTIC_AXIS_LABEL[axis];
  return {
    name: `pareto-${axis}: ${task}`,
    title: `Pareto frontier: ${label}: ${task}`,
    task,
    spec: paretoSpec(points, axis, `Quality vs ${label}: ${task}`, analyticSources(report.analytic.points, axis)),
  };
}

/** Every chart of a sweep, by file stem: the heatmap, the averaged frontier on each axis, one per task. */
export function sweepCharts(report: SweepReport): SweepChart[] {
  const charts: SweepChart[] = report.cells.length ? [{ name: 'heatmap', title: 'Accuracy heatmap', spec: heatmapSpec(report) }] : [];
  if (report.perplexity.some((r) => r.panels.length)) {
    for (const panel of FIGURE3_PANELS) charts.push({ name: panel.name, title: `Figure 3: ${panel.title}`, spec: figure3Spec(report.perplexity, panel) });
  }
  if (report.pareto.length) {
    charts.push({ name: 'pareto', title: 'Pareto frontier', spec: paretoSpec(report.pareto, report.paretoAxis, 'Quality vs throughput, averaged over tasks') });
    for (const axis of ['flops', 'state'] as const) {
      const points = analyticFrontier(report, axis);
      if (points.length)
        charts.push({
          name: `pareto-${axis}`,
          title: `Pareto frontier: ${ANALYTIC_AXIS_LABEL[axis]}`,
          spec: paretoSpec(points, axis, `Quality vs ${ANALYTIC_AXIS_LABEL[axis]}, averaged over tasks`, analyticSources(report.analytic.points, axis)),
        });
    }
    const tasks = [...new Set(report.cells.map((c) => c.taskLabel))];
    if (tasks.length > 1) {
      tasks.forEach((task, i) => {
        const { axis, points } = paretoFrontier(
          report.cells.filter((c) => c.taskLabel === task),
          report.benchmarks,
        );
        if (points.length)
          charts.push({
            name: `pareto-task-${i + 1}`,
            title: `Pareto frontier: ${task}`,
            task,
            spec: paretoSpec(points, axis, `Quality vs throughput: ${task}`),
          });
      });
    }
  }
  return charts;
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
