// A sweep's results, read back from Postgres: accuracy per cell with its Wilson interval,
// per-slice perplexity (AR hits vs Other), prefill throughput, the JRT-Prompt margin per model and
// the quality-throughput Pareto frontier over (model, strategy) points.
import { PREFILL_BENCHMARK_SQL } from '../../../dashboards/panels';
import { TASKS, type TaskName } from '../../../workflows/catalog';
import { paretoFrontier } from '../../../workflows/pareto';
import { pairedDifferenceInterval, wilsonInterval } from '../../../workflows/stats';
import { Prisma } from '../../../generated/prisma/client';
import { type Db } from '../db-client';
import { comparePaper, paperNumbers } from '../paper-numbers';
import { querySweep } from './sql';
import { ANALYTIC_SEQ_LEN, analyticPoints } from './analytic';
import { catalogPaths, loadModelCatalog } from '../../../activities/catalog';
import { CostEntry } from '../analytic-cost';
import { cachedFromFiles } from '../file-cache';
import { repoRoot } from '../paths';
import type { BenchmarkResult, CellResult, ExecutionSummary, JrtMargin, PanelBin, PerplexityResult, SweepReport } from './types';

interface CellRow {
  key: string;
  model_name: string;
  model_family: string;
  task_name: string;
  task_params: Record<string, unknown>;
  strategy_name: string;
  strategy_params: Record<string, unknown>;
  status: string;
  error: string | null;
  reused: boolean;
  state_bytes: number | null;
  parameters: number | null;
  n: number;
  correct: number;
  mean_score: number | null;
  prefill_tokens: bigint | null;
  prefill_seconds: number | null;
  num_examples: number;
  slices: Record<string, unknown> | null;
}

interface BenchmarkRow {
  model: string;
  strategy: string;
  batch: number;
  n: number;
  tokens_per_sequence: number;
  implementation: string;
  seconds: number;
  min_seconds: number | null;
  run_seconds: number[] | null;
  tokens_per_second: number;
  baseline: string;
  baseline_seconds: number;
  gpu_name: string | null;
}

/**
 * One row per cell of the sweep with its example totals (cell_scores) and prefill totals
 * (cell_shard_totals), both kept by triggers: one index lookup per cell, no example or shard rows
 * read (the benchmark in test/bench/dashboard.bench.ts prints this query's plan).
 */
export const cellRowsQuery = (sweepId: string) => Prisma.sql`
    SELECT c.key, c.model_name, c.model_family, c.task_name, c.task_params, c.strategy_name, c.strategy_params, c.status, c.error, c.num_examples, c.slices,
           sc.reused, (c.provenance->'model'->>'stateBytes')::float8 AS state_bytes,
           (c.provenance->'model'->>'parameters')::float8 AS parameters, coalesce(x.examples, 0) AS n, coalesce(x.correct, 0) AS correct,
           x.score_sum / nullif(x.examples, 0) AS mean_score, t.prefill_tokens, t.prefill_seconds
      FROM sweep_cells sc
      JOIN cells c ON c.key = sc.cell_key
      LEFT JOIN cell_scores x ON x.cell_key = c.key
      LEFT JOIN cell_shard_totals t ON t.cell_key = c.key
     WHERE sc.sweep_id = ${sweepId}
     ORDER BY c.model_name, c.task_name, c.strategy_name`;

/** A sweep id that no sweep in the database has. */
export class UnknownSweepError extends Error {
  constructor(readonly sweepId: string) {
    super(`no sweep "${sweepId}" in the database`);
  }
}

/**
 * `margins: false` leaves out the JRT-Prompt margins: the dashboard's grid API answers without
 * them and the sweep page asks for them separately. `execution: false` leaves out where the
 * shards ran (null): it is the one read that scans every shard record of the sweep, and the
 * dashboard does not show it.
 */
export function loadSweepReport(
  db: Db,
  sweepId: string,
  opts?: { margins?: boolean; execution?: true },
): Promise<SweepReport & { execution: ExecutionSummary }>;
export function loadSweepReport(db: Db, sweepId: string, opts: { margins?: boolean; execution: false }): Promise<SweepReport>;
export async function loadSweepReport(db: Db, sweepId: string, opts: { margins?: boolean; execution?: boolean } = {}): Promise<SweepReport> {
  // independent reads, each of a few hundred rows at most: in flight together
  const [sweep, rows, slices, benchmarkRows, jrtMargins] = await Promise.all([
    db.sweep.findUnique({ where: { id: sweepId } }),
    db.$queryRaw<CellRow[]>(cellRowsQuery(sweepId)),
    db.$queryRaw<Array<{ cell_key: string; slice: string; nll: number; tokens: bigint }>>`
      SELECT s.cell_key, s.slice, s.nll_sum AS nll, s.token_count AS tokens
        FROM cell_slice_totals s JOIN sweep_cells sc ON sc.cell_key = s.cell_key AND sc.sweep_id = ${sweepId}
       WHERE s.slice IN ('ar_hit', 'other')`,
    querySweep<BenchmarkRow>(db, PREFILL_BENCHMARK_SQL, sweepId),
    opts.margins === false ? Promise.resolve([]) : loadJrtMargins(db, sweepId),
  ]);
  if (!sweep) throw new UnknownSweepError(sweepId);
  const ppl = new Map<string, Record<string, number>>();
  for (const s of slices) {
    if (Number(s.tokens) === 0) continue;
    const entry = ppl.get(s.cell_key) ?? {};
    entry[s.slice] = Math.exp(s.nll / Number(s.tokens));
    ppl.set(s.cell_key, entry);
  }
  const hiddenReason = perplexityHiddenReason();
  const labels = taskLabels(rows.map((r) => ({ name: r.task_name, params: r.task_params })));
  const cells: CellResult[] = rows.map((r, i) => {
    const n = Number(r.n);
    const acc = r.mean_score === null ? null : Number(r.mean_score);
    const secs = r.prefill_seconds === null ? null : Number(r.prefill_seconds);
    return {
      key: r.key,
      model: r.model_name,
      family: r.model_family,
      task: r.task_name,
      taskLabel: labels[i]!,
      strategy: r.strategy_name,
      status: r.status,
      reused: r.reused,
      examples: n,
      correct: Number(r.correct),
      accuracy: acc,
      ci95: n === 0 ? null : wilsonInterval(Number(r.correct), n),
      perplexity: hiddenReason(r.model_name) ? {} : (ppl.get(r.key) ?? {}),
      perplexityHidden: hiddenReason(r.model_name),
      prefillTokensPerSecond: secs && secs > 0 ? Number(r.prefill_tokens) / secs : null,
      promptsPerSecond: secs && secs > 0 ? n / secs : null,
      parameters: r.parameters,
      stateBytes: r.state_bytes,
      error: r.error,
      taskParams: r.task_params,
      strategyParams: r.strategy_params,
    };
  });
  const benchmarks: BenchmarkResult[] = benchmarkRows.map((r) => ({
    model: r.model,
    strategy: r.strategy,
    seqLen: r.n,
    batchSize: r.batch,
    processedLen: r.tokens_per_sequence,
    implementation: r.implementation,
    seconds: r.seconds,
    minSeconds: r.min_seconds,
    runSeconds: r.run_seconds,
    tokensPerSecond: r.tokens_per_second,
    baselineImplementation: r.baseline,
    baselineSeconds: r.baseline_seconds,
    gpuName: r.gpu_name,
  }));
  const recall = cells.filter((c) => TASKS[c.task as TaskName]?.kind === 'recall');
  const perplexity = await loadPerplexity(
    db,
    sweepId,
    rows.filter((r) => TASKS[r.task_name as TaskName]?.kind === 'perplexity'),
    rows.map((r, i) => [r.key, labels[i]!]),
  );
  const { axis, interval, points } = paretoFrontier(recall, benchmarks);
  const execution = opts.execution === false ? null : await loadExecution(db, sweepId);
  return {
    sweepId,
    name: sweep.name,
    status: sweep.status,
    completedBy: sweep.completedBy,
    createdAt: sweep.createdAt.toISOString(),
    finishedAt: sweep.finishedAt?.toISOString() ?? null,
    gitSha: sweep.gitSha,
    cells: recall,
    benchmarks,
    perplexity,
    jrtMargins,
    paretoAxis: axis,
    paretoInterval: interval,
    pareto: points,
    analytic: { seqLen: ANALYTIC_SEQ_LEN, points: analyticPoints(recall, catalogEntryOf()) },
    paper: comparePaper(recall, paperNumbers()),
    execution,
  };
}

async function loadExecution(db: Db, sweepId: string): Promise<ExecutionSummary> {
  const [exec] = await db.$queryRaw<Array<{ shards: bigint; workers: bigint; loads: bigint; pairs: bigint }>>`
    SELECT count(*) AS shards,
           count(DISTINCT (s.worker->>'hostname', s.worker->>'pid')) AS workers,
           count(*) FILTER (WHERE s.load_seconds > 0) AS loads,
           count(DISTINCT (s.worker->>'hostname', s.worker->>'pid', c.model_name)) AS pairs
      FROM shard_records s
      JOIN sweep_cells sc ON sc.cell_key = s.cell_key AND sc.sweep_id = ${sweepId} AND NOT sc.reused
      JOIN cells c ON c.key = s.cell_key`;
  return { shards: Number(exec!.shards), workers: Number(exec!.workers), modelLoads: Number(exec!.loads), workerModelPairs: Number(exec!.pairs) };
}

/**
 * A sweep may list one task twice with different parameters (set disjointness with the short set
 * first, then the long one): such entries are labelled with the parameters that differ.
 */
export function taskLabels(tasks: Array<{ name: string; params: Record<string, unknown> }>): string[] {
  // per task name, the parameters whose values are not the same in all its entries (a missing one
  // counts as a value): one pass over the entries, so a grid of hundreds of cells labels quickly
  const byName = new Map<string, Array<Record<string, unknown>>>();
  for (const t of tasks) {
    const variants = byName.get(t.name);
    if (variants) variants.push(t.params);
    else byName.set(t.name, [t.params]);
  }
  const differing = new Map<string, string[]>();
  for (const [name, variants] of byName) {
    const keys = new Set(variants.flatMap((v) => Object.keys(v)));
    differing.set(name, [...keys].filter((k) => new Set(variants.map((v) => JSON.stringify(v[k]))).size > 1).sort());
  }
  return tasks.map((t) => {
    const keys = differing.get(t.name)!.filter((k) => Object.hasOwn(t.params, k));
    return keys.length ? `${t.name} ${keys.map((k) => `${k}=${JSON.stringify(t.params[k])}`).join(' ')}` : t.name;
  });
}

/**
 * Per model, JRT-Prompt against default on the same examples of the same task entries, pooled over
 * tasks: the paired difference and its Newcombe interval. Pairs come from the cells' outcome
 * bitmaps (cell_scores), not from their examples.
 */
export const jrtMarginsQuery = (sweepId: string) => Prisma.sql`
    SELECT d.model_name AS model, j.strategy_name AS strategy, sum(f.both_right)::int AS both, sum(f.only_a)::int AS only_default,
           sum(f.only_b)::int AS only_jrt, sum(f.neither)::int AS neither
      FROM sweep_cells sd
      JOIN cells d ON d.key = sd.cell_key AND d.strategy_name = 'default'
      JOIN sweep_cells sj ON sj.sweep_id = sd.sweep_id
      JOIN cells j ON j.key = sj.cell_key AND j.strategy_name IN ('jrt_prompt', 'jrt_question_first') AND j.model_name = d.model_name
                  AND j.task_name = d.task_name AND j.task_params = d.task_params
      JOIN cell_scores xd ON xd.cell_key = d.key
      JOIN cell_scores xj ON xj.cell_key = j.key
      CROSS JOIN LATERAL paired_outcomes(xd.seen, xd.hits, xj.seen, xj.hits) f
     WHERE sd.sweep_id = ${sweepId}
     GROUP BY d.model_name, j.strategy_name
     ORDER BY d.model_name, j.strategy_name`;

export async function loadJrtMargins(db: Db, sweepId: string): Promise<JrtMargin[]> {
  const rows = await db.$queryRaw<Array<{ model: string; strategy: string; both: number; only_default: number; only_jrt: number; neither: number }>>(
    jrtMarginsQuery(sweepId),
  );
  return rows.map((r) => ({
    model: r.model,
    strategy: r.strategy,
    examples: r.both + r.only_default + r.only_jrt + r.neither,
    margin: pairedDifferenceInterval({ both: r.both, onlyA: r.only_default, onlyB: r.only_jrt, neither: r.neither }),
  }));
}

/**
 * Models whose prompt perplexity means nothing: the zoo's answers-objective models were trained
 * to predict answers only, never context tokens, so their AR-hit/Other perplexities on recall
 * prompts run to 1e6-1e11. The report shows the reason instead of the numbers.
 */
const modelCatalog = cachedFromFiles(
  () => Object.values(catalogPaths(repoRoot)),
  () => loadModelCatalog(repoRoot),
);

/** The catalog's entries for the analytic costs; none when the catalog cannot be read (a report
 * still renders, its analytic charts leave the models out and say so). */
function catalogEntryOf(): (model: string) => CostEntry | undefined {
  try {
    const { entries } = modelCatalog();
    return (model) => {
      const entry = entries.get(model);
      return entry && CostEntry.parse(entry);
    };
  } catch {
    return () => undefined;
  }
}

function perplexityHiddenReason(): (model: string) => string | undefined {
  let catalog: ReturnType<typeof loadModelCatalog> | null = null;
  try {
    catalog = modelCatalog();
  } catch {
    return () => undefined;
  }
  return (model) =>
    catalog.objectiveOf(model) === 'answers'
      ? `${model} was trained on answers only (never on context tokens): its prompt perplexity means nothing`
      : undefined;
}

const PANEL_PREFIX = 'fig3/';

async function loadPerplexity(db: Db, sweepId: string, rows: CellRow[], labels: Array<[string, string]>): Promise<PerplexityResult[]> {
  if (rows.length === 0) return [];
  const slices = await db.$queryRaw<Array<{ cell_key: string; slice: string; nll: number; tokens: bigint }>>`
    SELECT s.cell_key, s.slice, sum(s.nll_sum) AS nll, sum(s.token_count) AS tokens
      FROM slice_stats s JOIN sweep_cells sc ON sc.cell_key = s.cell_key AND sc.sweep_id = ${sweepId}
      JOIN cells c ON c.key = s.cell_key AND c.task_name = 'perplexity'
     GROUP BY s.cell_key, s.slice`;
  const label = new Map(labels);
  return rows.map((r) => {
    const mine = slices.filter((s) => s.cell_key === r.key);
    const total = (name: string) => mine.find((s) => s.slice === name);
    const ppl = (s?: { nll: number; tokens: bigint }) => (s && Number(s.tokens) > 0 ? Math.exp(s.nll / Number(s.tokens)) : null);
    const panels: PanelBin[] = mine
      .filter((s) => s.slice.startsWith(PANEL_PREFIX) && Number(s.tokens) > 0)
      .map((s) => {
        const [panel, bin] = s.slice.slice(PANEL_PREFIX.length).split(':') as [PanelBin['panel'], string];
        return { panel, bin, lo: Number(bin.split('-')[0]), perplexity: Math.exp(s.nll / Number(s.tokens)), tokens: Number(s.tokens) };
      })
      .sort((a, b) => a.panel.localeCompare(b.panel) || a.lo - b.lo);
    return {
      key: r.key,
      model: r.model_name,
      taskLabel: label.get(r.key) ?? r.task_name,
      strategy: r.strategy_name,
      status: r.status,
      reused: r.reused,
      sequences: Number(r.num_examples),
      arHit: ppl(total('ar_hit')),
      arHitTokens: Number(total('ar_hit')?.tokens ?? 0),
      other: ppl(total('other')),
      otherTokens: Number(total('other')?.tokens ?? 0),
      panels,
      error: r.error,
      protocol: protocolText(r.task_params, r.slices),
    };
  });
}

/** The protocol a perplexity cell ran under, every open choice stated (docs/protocol.md). */
export function protocolText(params: Record<string, unknown>, slices: Record<string, unknown> | null): string {
  const p = params as { corpus: string; sequenceTokens: number; scoredTokens: number; recallMinDistance: number; distanceMaxCount: number };
  const s = (slices ?? {}) as { frequencyThreshold?: number; frequencyBinEdges?: number[]; distanceBinEdges?: number[]; bigramCounts?: string | null };
  return (
    `perplexity v${TASKS.perplexity.version} on ${p.corpus}: sequences of ${p.sequenceTokens} tokens, the last ${p.scoredTokens} scored; ` +
    `AR hit = the bigram occurred earlier in the sequence and was seen < ${s.frequencyThreshold} times in training ` +
    `(${s.bigramCounts ? `table ${s.bigramCounts}` : "the language's own training table"}); distance from the most recent earlier occurrence; ` +
    `recall-frequency panel: repeats >= ${p.recallMinDistance} tokens apart; recall-distance panel: bigrams seen < ${p.distanceMaxCount} times; ` +
    `other-frequency panel: bigrams not seen earlier in the sequence; frequency bins [${(s.frequencyBinEdges ?? []).join(', ')}, inf), distance bins [${(s.distanceBinEdges ?? []).join(', ')}, inf)`
  );
}
