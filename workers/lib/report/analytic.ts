// The Pareto frontier on the analytic axes: per (model, strategy), prefill FLOPs per prompt token
// and decoding-state bytes per sequence at one stated length, counted from the model's config
// (workers/lib/analytic-cost.ts) with the figures the worker recorded preferred where they exist.
// Lower cost is better, so the frontier is marked on the reciprocal and charts reverse the axis.
import { markFrontier, type ParetoPoint } from '../../../workflows/pareto';
import { strategyCost, readsOfPrompt, type CostEntry } from '../analytic-cost';
import type { AnalyticPoint, CellResult, SweepReport } from './types';

/** The stated prompt length of the analytic axes: the paper's shortest prefill benchmark length. */
export const ANALYTIC_SEQ_LEN = 1024;

export type AnalyticAxis = 'flops' | 'state';
export const ANALYTIC_AXIS_LABEL: Record<AnalyticAxis, string> = {
  flops: `prefill FLOPs per prompt token at ${ANALYTIC_SEQ_LEN.toLocaleString('en-US')} tokens (analytic)`,
  state: `decoding state bytes per sequence at ${ANALYTIC_SEQ_LEN.toLocaleString('en-US')} tokens (analytic)`,
};

const pointId = (c: { model: string; strategy: string }) => `${c.model}\u0000${c.strategy}`;

/** Per (model, strategy) of the recall cells, its costs at ANALYTIC_SEQ_LEN; a model the catalog
 * does not know gets nulls. The recorded parameter count is the same in every cell of a model;
 * the recorded state is the largest any cell saw. */
export function analyticPoints(cells: CellResult[], entryOf: (model: string) => CostEntry | undefined): AnalyticPoint[] {
  const groups = new Map<string, CellResult[]>();
  for (const c of cells) groups.set(pointId(c), [...(groups.get(pointId(c)) ?? []), c]);
  return [...groups.values()].map((cs) => {
    const { model, strategy, strategyParams } = cs[0]!;
    const entry = entryOf(model);
    const recorded = {
      parameters: cs.find((c) => c.parameters !== null)?.parameters ?? null,
      stateBytes: cs.some((c) => c.stateBytes !== null) ? Math.max(...cs.flatMap((c) => (c.stateBytes === null ? [] : [c.stateBytes]))) : null,
    };
    const cost = entry
      ? strategyCost(entry, recorded, ANALYTIC_SEQ_LEN, readsOfPrompt(strategy, strategyParams))
      : { flopsPerToken: null, stateBytes: null, parametersFrom: null, stateFrom: null, mixingCounted: false };
    return { model, strategy, ...cost };
  });
}

/** The quality-cost frontier on one analytic axis: accuracy averaged over tasks, as on the
 * measured axis; points without the figure are left out. Costs are exact, so every verdict is
 * settled. `throughput` carries the cost in the axis's unit. */
export function analyticFrontier(report: Pick<SweepReport, 'cells' | 'analytic'>, axis: AnalyticAxis, cells: CellResult[] = report.cells): ParetoPoint[] {
  const cost = new Map(report.analytic.points.map((p) => [pointId(p), axis === 'flops' ? p.flopsPerToken : p.stateBytes]));
  const groups = new Map<string, CellResult[]>();
  for (const c of cells) {
    if (c.accuracy === null || (cost.get(pointId(c)) ?? null) === null) continue;
    groups.set(pointId(c), [...(groups.get(pointId(c)) ?? []), c]);
  }
  const points = [...groups.entries()].map(([id, cs]) => {
    const value = cost.get(id)!;
    return {
      model: cs[0]!.model,
      strategy: cs[0]!.strategy,
      accuracy: cs.reduce((s, c) => s + c.accuracy!, 0) / cs.length,
      value,
      throughput: 1 / value,
      throughputLo: 1 / value,
      throughputHi: 1 / value,
      interval: 'none' as const,
    };
  });
  return markFrontier(points)
    .map(({ value, ...p }) => ({ ...p, throughput: value, throughputLo: value, throughputHi: value }))
    .sort((a, b) => a.throughput - b.throughput);
}

/** Where the figures of an axis came from, in a sentence for the chart's readers. */
export function analyticSources(points: AnalyticPoint[], axis: AnalyticAxis): string {
  const from = (p: AnalyticPoint) => (axis === 'flops' ? p.parametersFrom : p.stateFrom);
  const recorded = [...new Set(points.filter((p) => from(p) === 'recorded').map((p) => p.model))];
  const counted = [...new Set(points.filter((p) => from(p) !== null && from(p) !== 'recorded').map((p) => p.model))];
  const weightsOnly = [...new Set(points.filter((p) => axis === 'flops' && p.flopsPerToken !== null && !p.mixingCounted).map((p) => p.model))];
  const missing = [...new Set(points.filter((p) => from(p) === null).map((p) => p.model))];
  const recordedWhat = axis === 'flops' ? 'parameter count recorded by the worker' : 'state recorded by the worker (fixed for these models)';
  return [
    recorded.length ? `${recordedWhat}: ${recorded.join(', ')}` : '',
    counted.length ? (axis === 'flops' ? `catalog parameter count: ${counted.join(', ')}` : `counted from the config: ${counted.join(', ')}`) : '',
    weightsOnly.length ? `weights only, sequence mixing not counted: ${weightsOnly.join(', ')}` : '',
    missing.length ? `left out, no figure: ${missing.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join('; ');
}
