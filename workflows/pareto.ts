// The quality-throughput Pareto frontier over (model, strategy) points. Pure, so the report, the
// web dashboard and the unit tests compute the very same frontier.
import { medianInterval } from './stats';

/**
 * benchmark: prompt tokens/s from the sweep's prefill_throughput cells (random inputs at fixed
 * lengths); eval: prompts/s prefilled while the recall cells ran.
 */
export type ParetoAxis = 'benchmark' | 'eval';
export const PARETO_AXIS_LABEL: Record<ParetoAxis, string> = {
  benchmark: 'prefill tok/s (benchmark)',
  eval: 'prompts/s (eval prefill)',
};

/**
 * What the bars on the benchmark axis are. median-ci: from every timed run's seconds, each
 * benchmark row's distribution-free 95% interval of its median (`medianInterval`), summed over the
 * point's rows; fastest-run: sweeps recorded before per-run seconds were kept (migration
 * 20261129040000_throughput_run_seconds), which have only the median and the fastest run; mixed:
 * some points of each; none: the eval axis, which carries no interval.
 */
export type ParetoInterval = 'median-ci' | 'fastest-run' | 'mixed' | 'none';
export const PARETO_INTERVAL_LABEL: Record<ParetoInterval, string> = {
  'median-ci': '95% interval of the median run (order statistics of the timed runs)',
  'fastest-run': 'median to fastest run, mirrored (recorded before per-run timings were kept: not an interval)',
  mixed: '95% interval of the median run where per-run timings were kept, else median to fastest run',
  none: 'no interval on this axis',
};

/** What a point needs from a recall cell. */
export interface ParetoCell {
  model: string;
  strategy: string;
  examples: number;
  accuracy: number | null;
  promptsPerSecond: number | null;
}

/** What a point needs from one prefill benchmark measurement. */
export interface ParetoBenchmark {
  model: string;
  strategy: string;
  seqLen: number;
  batchSize: number;
  /** median of the timed runs */
  seconds: number;
  /** fastest timed run, when recorded */
  minSeconds?: number | null;
  /** every timed run's seconds, when recorded; absent or null for older rows */
  runSeconds?: readonly number[] | null;
}

export interface ParetoPoint {
  model: string;
  strategy: string;
  accuracy: number;
  /** in the axis's unit */
  throughput: number;
  /** range of the throughput the timings allow; equal to `throughput` when nothing says more */
  throughputLo: number;
  throughputHi: number;
  /** what [throughputLo, throughputHi] is: never 'mixed' for one point */
  interval: Exclude<ParetoInterval, 'mixed'>;
  onFrontier: boolean;
  /**
   * false when the throughput intervals could put this point on the other side of the frontier:
   * a neighbour's interval overlaps it and would dominate (or stop dominating) it
   */
  settled: boolean;
}

interface Scored {
  accuracy: number;
  throughput: number;
  throughputLo: number;
  throughputHi: number;
}

/** q dominates p: at least as good on both axes and strictly better on one. */
const dominates = (q: { accuracy: number; t: number }, p: { accuracy: number; t: number }) =>
  q.accuracy >= p.accuracy && q.t >= p.t && (q.accuracy > p.accuracy || q.t > p.t);

/**
 * Marks the points no other point dominates. Two identical points do not dominate each other, so
 * duplicates share the frontier. A point is settled when its verdict holds at every throughput
 * the intervals allow: the worst case for it (itself at its low end, the others at their high end)
 * and the best case (the reverse) agree.
 */
export function markFrontier<T extends Scored>(points: T[]): Array<T & { onFrontier: boolean; settled: boolean }> {
  return points.map((p) => {
    const others = points.filter((q) => q !== p);
    const at = (x: Scored, t: number) => ({ accuracy: x.accuracy, t });
    const onFrontier = !others.some((q) => dominates(at(q, q.throughput), at(p, p.throughput)));
    const worst = !others.some((q) => dominates(at(q, q.throughputHi), at(p, p.throughputLo)));
    const best = !others.some((q) => dominates(at(q, q.throughputLo), at(p, p.throughputHi)));
    return { ...p, onFrontier, settled: worst === best };
  });
}

/**
 * One point per (model, strategy): accuracy averaged over tasks. Throughput is the benchmark's
 * prompt tokens per second (all its points' tokens over all their median times) when every point
 * has benchmark rows, else prompts prefilled per second over the recall cells, so one frontier
 * never mixes units. On the benchmark axis a point's seconds are the sum of its rows' medians and
 * its interval the sum of their intervals' ends: when every row's interval covers its median, the
 * sum covers the sum, so the point's coverage is at least 1 minus the rows' summed misses (two
 * rows of ten runs: 95.7%). Rows without per-run seconds fall back to the range from the fastest
 * runs' rate down to the median's rate less the same spread, and `interval` says so.
 */
export function paretoFrontier(cells: ParetoCell[], benchmarks: ParetoBenchmark[] = []): { axis: ParetoAxis; interval: ParetoInterval; points: ParetoPoint[] } {
  const id = (model: string, strategy: string) => `${model}\u0000${strategy}`;
  const groups = new Map<string, ParetoCell[]>();
  for (const c of cells) {
    if (c.accuracy === null || c.promptsPerSecond === null) continue;
    const k = id(c.model, c.strategy);
    groups.set(k, [...(groups.get(k) ?? []), c]);
  }
  const benchByPoint = new Map<string, ParetoBenchmark[]>();
  for (const b of benchmarks) {
    const k = id(b.model, b.strategy);
    benchByPoint.set(k, [...(benchByPoint.get(k) ?? []), b]);
  }
  const axis: ParetoAxis = groups.size > 0 && [...groups.keys()].every((k) => benchByPoint.has(k)) ? 'benchmark' : 'eval';
  const points = [...groups.entries()].map(([k, cs]) => {
    let throughput: number;
    let throughputLo: number;
    let throughputHi: number;
    let interval: ParetoPoint['interval'] = 'none';
    if (axis === 'benchmark') {
      const bs = benchByPoint.get(k)!;
      const tokens = bs.reduce((s, b) => s + b.batchSize * b.seqLen, 0);
      const median = bs.reduce((s, b) => s + b.seconds, 0);
      throughput = tokens / median;
      if (bs.every((b) => b.runSeconds && b.runSeconds.length > 0)) {
        const ends = bs.map((b) => medianInterval(b.runSeconds!));
        throughputHi = tokens / ends.reduce((s, e) => s + e.lo, 0);
        throughputLo = tokens / ends.reduce((s, e) => s + e.hi, 0);
        interval = 'median-ci';
      } else {
        const fastest = bs.reduce((s, b) => s + Math.min(b.seconds, b.minSeconds ?? b.seconds), 0);
        throughputHi = tokens / fastest;
        throughputLo = tokens / (median + (median - fastest));
        interval = 'fastest-run';
      }
    } else {
      const seconds = cs.reduce((s, c) => s + c.examples / c.promptsPerSecond!, 0);
      throughput = cs.reduce((s, c) => s + c.examples, 0) / seconds;
      throughputLo = throughputHi = throughput;
    }
    return {
      model: cs[0]!.model,
      strategy: cs[0]!.strategy,
      accuracy: cs.reduce((s, c) => s + c.accuracy!, 0) / cs.length,
      throughput,
      throughputLo,
      throughputHi,
      interval,
    };
  });
  return { axis, interval: intervalOf(points), points: markFrontier(points).sort((a, b) => b.throughput - a.throughput) };
}

/** What a chart's bars are, from its points' intervals. */
export function intervalOf(points: ReadonlyArray<Pick<ParetoPoint, 'interval'>>): ParetoInterval {
  const kinds = new Set(points.map((p) => p.interval));
  if (kinds.size === 0 || (kinds.size === 1 && kinds.has('none'))) return 'none';
  if (kinds.size === 1) return [...kinds][0]!;
  return kinds.has('median-ci') && kinds.has('fastest-run') ? 'mixed' : [...kinds].find((x) => x !== 'none')!;
}
