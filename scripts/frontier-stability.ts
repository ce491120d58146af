// How stable the quality-throughput frontier is across repeated timings, from results written by
// `python -m twice_inference.offline` (no stack needed):
//   npx tsx scripts/frontier-stability.ts <recall.jsonl> <bench-1.jsonl> <bench-2.jsonl> [...]
// The recall results give each (model, strategy) its accuracy once; each bench file is one timing
// of the prefill_throughput shards. For every timing it prints the frontier under the interval the
// report now draws (order statistics of every run) and under the range drawn before (median to
// fastest run, mirrored), then how many points changed side between consecutive timings and how
// many of those each kind had marked unsettled, and how wide the bars are.
import { readFileSync } from 'node:fs';
import { RunShardInput, RunShardOutput } from '../workflows/contract';
import { paretoFrontier, type ParetoBenchmark, type ParetoCell, type ParetoPoint } from '../workflows/pareto';
import { medianInterval } from '../workflows/stats';

interface Shard {
  request: RunShardInput;
  output: RunShardOutput;
}

const readShards = (file: string): Shard[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((line, i) => {
      const raw = JSON.parse(line) as { request: unknown; output: unknown };
      try {
        return { request: RunShardInput.parse(raw.request), output: RunShardOutput.parse(raw.output) };
      } catch (error) {
        throw new Error(`${file}:${i + 1}: not a {request, output} line of run_shard: ${String(error)}`);
      }
    });

/** One cell per cell key: accuracy is the mean score over its examples, pooled over its shards. */
function recallCells(shards: Shard[]): ParetoCell[] {
  const byKey = new Map<string, { model: string; strategy: string; n: number; score: number }>();
  for (const { request, output } of shards) {
    if (!output.examples.length) continue;
    const c = byKey.get(request.cellKey) ?? { model: request.model.name, strategy: request.strategy.name, n: 0, score: 0 };
    c.n += output.examples.length;
    c.score += output.examples.reduce((s, e) => s + e.score, 0);
    byKey.set(request.cellKey, c);
  }
  // the eval axis is never used here: every point has benchmark rows
  return [...byKey.values()].map((c) => ({ model: c.model, strategy: c.strategy, examples: c.n, accuracy: c.score / c.n, promptsPerSecond: 1 }));
}

/**
 * The benchmark rows of one timing, one per point: a point timed in rounds has a measurement in
 * each round's shard, and its median and fastest run are over all of them, as the benchmark query
 * aggregates them (dashboards/panels.ts). `withRuns: false` drops the per-run seconds (the old
 * range).
 */
function benchmarkRows(shards: Shard[], withRuns: boolean): ParetoBenchmark[] {
  const points = new Map<string, { model: string; strategy: string; seqLen: number; batchSize: number; medians: number[]; runs: number[] }>();
  for (const { request, output } of shards) {
    for (const m of output.measurements) {
      const key = JSON.stringify([request.cellKey, m.seqLen, m.batchSize]);
      const p = points.get(key) ?? {
        model: request.model.name,
        strategy: request.strategy.name,
        seqLen: m.seqLen,
        batchSize: m.batchSize,
        medians: [],
        runs: [],
      };
      p.medians.push(m.measured.medianSeconds);
      p.runs.push(...(m.measured.runSeconds ?? [m.measured.medianSeconds]));
      points.set(key, p);
    }
  }
  return [...points.values()].map((p) => ({
    model: p.model,
    strategy: p.strategy,
    seqLen: p.seqLen,
    batchSize: p.batchSize,
    seconds: p.medians.length === 1 ? p.medians[0]! : medianInterval(p.runs).estimate,
    minSeconds: Math.min(...p.runs),
    runSeconds: withRuns ? p.runs : null,
  }));
}

const id = (p: Pick<ParetoPoint, 'model' | 'strategy'>) => `${p.model} · ${p.strategy}`;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function main(argv: string[]): number {
  const [recallFile, ...benchFiles] = argv;
  if (!recallFile || benchFiles.length < 2) {
    console.error('usage: npx tsx scripts/frontier-stability.ts <recall.jsonl> <bench-1.jsonl> <bench-2.jsonl> [...]');
    return 2;
  }
  const cells = recallCells(readShards(recallFile));
  const timings = benchFiles.map((f) => readShards(f));
  const kinds = { interval: true, range: false } as const;
  const frontiers = timings.map((shards) =>
    Object.fromEntries(Object.entries(kinds).map(([kind, withRuns]) => [kind, paretoFrontier(cells, benchmarkRows(shards, withRuns)).points])),
  ) as Array<Record<keyof typeof kinds, ParetoPoint[]>>;

  frontiers.forEach((f, i) => {
    console.log(`timing ${i + 1} (${benchFiles[i]}):`);
    for (const p of f.interval) {
      const old = f.range.find((q) => id(q) === id(p))!;
      const mark = (q: ParetoPoint) => `${q.onFrontier ? 'frontier' : 'dominated'}${q.settled ? '' : '?'}`;
      console.log(
        `  ${id(p).padEnd(28)} acc ${(100 * p.accuracy).toFixed(1).padStart(5)}%  ${p.throughput.toFixed(0).padStart(7)} tok/s` +
          `  interval ${p.throughputLo.toFixed(0)}-${p.throughputHi.toFixed(0)} ${mark(p)}` +
          `  | old range ${old.throughputLo.toFixed(0)}-${old.throughputHi.toFixed(0)} ${mark(old)}`,
      );
    }
  });

  for (const kind of Object.keys(kinds) as Array<keyof typeof kinds>) {
    let changed = 0;
    let flagged = 0;
    let compared = 0;
    for (let i = 1; i < frontiers.length; i++) {
      const before = new Map(frontiers[i - 1]![kind].map((p) => [id(p), p]));
      for (const p of frontiers[i]![kind]) {
        const q = before.get(id(p))!;
        compared += 1;
        if (q.onFrontier !== p.onFrontier) {
          changed += 1;
          // a change is foreseen when the point was unsettled in either timing
          if (!q.settled || !p.settled) flagged += 1;
        }
      }
    }
    const widths = frontiers.flatMap((f) => f[kind].map((p) => (p.throughputHi - p.throughputLo) / p.throughput));
    const unsettled = frontiers.flatMap((f) => f[kind]).filter((p) => !p.settled).length;
    console.log(
      `${kind === 'interval' ? '95% interval of the median (order statistics)' : 'old range (median to fastest run, mirrored)'}: ` +
        `${changed} of ${compared} point-comparisons changed side between consecutive timings, ${flagged} of them marked unsettled; ` +
        `${unsettled} of ${widths.length} points unsettled; bar width / throughput median ${(100 * median(widths)).toFixed(1)}%, ` +
        `max ${(100 * Math.max(...widths)).toFixed(1)}%`,
    );
  }
  return 0;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  process.exit(main(process.argv.slice(2)));
}
