// A sweep's results, read back from Postgres: accuracy per cell with a 95% confidence interval,
// per-slice perplexity (AR hits vs Other), prefill throughput, and the quality-throughput Pareto
// frontier over (model, strategy) points. Rendered for the terminal and as report files.
// Tested in test/unit/report.test.ts (pure parts) and the sweep integration tests.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Table from 'cli-table3';
import { PREFILL_BENCHMARK_SQL } from '../../dashboards/panels';
import { TASKS, type TaskName } from '../../workflows/catalog';
import { type Db } from './db-client';

export interface CellResult {
  key: string;
  model: string;
  family: string;
  task: string;
  /** the task name, plus the parameters that tell apart two entries of one task in a sweep */
  taskLabel: string;
  strategy: string;
  status: string;
  reused: boolean;
  examples: number;
  accuracy: number | null;
  /** half-width of the 95% interval of the accuracy (normal approximation) */
  ci95: number | null;
  perplexity: Record<string, number>;
  prefillTokensPerSecond: number | null;
  /** prompts prefilled per second: JRT-Prompt's doubled input shows up here */
  promptsPerSecond: number | null;
  stateBytes: number | null;
  error: string | null;
}

/** One prefill_throughput point with the attention baseline timed beside it. */
export interface BenchmarkResult {
  model: string;
  strategy: string;
  seqLen: number;
  batchSize: number;
  /** tokens per sequence one run processes (2N under JRT-Prompt) */
  processedLen: number;
  implementation: string;
  seconds: number;
  /** prompt tokens (batch x seqLen) per second */
  tokensPerSecond: number;
  baselineImplementation: string;
  baselineSeconds: number;
  gpuName: string | null;
}

export interface ParetoPoint {
  model: string;
  strategy: string;
  accuracy: number;
  /** in the report's `paretoAxis` unit */
  throughput: number;
  onFrontier: boolean;
}

/**
 * benchmark: prompt tokens/s from the sweep's prefill_throughput cells (random inputs at fixed
 * lengths); eval: prompts/s prefilled while the recall cells ran.
 */
export type ParetoAxis = 'benchmark' | 'eval';
export const PARETO_AXIS_LABEL: Record<ParetoAxis, string> = {
  benchmark: 'prefill tok/s (benchmark)',
  eval: 'prompts/s (eval prefill)',
};

export interface SweepReport {
  sweepId: string;
  name: string;
  status: string;
  createdAt: string;
  finishedAt: string | null;
  gitSha: string | null;
  /** recall cells; throughput cells are summarised in `benchmarks` */
  cells: CellResult[];
  benchmarks: BenchmarkResult[];
  paretoAxis: ParetoAxis;
  pareto: ParetoPoint[];
  execution: ExecutionSummary;
}

/**
 * Where this sweep's shards ran (cells it reused from earlier sweeps are not counted). A model
 * load is a shard whose worker had to load the model first; with model-major placement the
 * loads equal the (worker, model) pairs, far fewer than the shards.
 */
export interface ExecutionSummary {
  shards: number;
  workers: number;
  modelLoads: number;
  /** distinct (worker process, model) pairs that ran shards */
  workerModelPairs: number;
}

interface CellRow {
  key: string;
  model_name: string;
  model_family: string;
  task_name: string;
  task_params: Record<string, unknown>;
  strategy_name: string;
  status: string;
  error: string | null;
  reused: boolean;
  provenance: { model?: { stateBytes?: number } } | null;
  n: bigint;
  mean_score: number | null;
  prefill_tokens: bigint | null;
  prefill_seconds: number | null;
}

export async function loadSweepReport(db: Db, sweepId: string): Promise<SweepReport> {
  const sweep = await db.sweep.findUnique({ where: { id: sweepId } });
  if (!sweep) throw new Error(`no sweep "${sweepId}" in the database`);
  const rows = await db.$queryRaw<CellRow[]>`
    SELECT c.key, c.model_name, c.model_family, c.task_name, c.task_params, c.strategy_name, c.status, c.error,
           sc.reused, c.provenance,
           (SELECT count(*) FROM example_results e WHERE e.cell_key = c.key) AS n,
           (SELECT avg(score) FROM example_results e WHERE e.cell_key = c.key) AS mean_score,
           (SELECT sum(prefill_tokens) FROM shard_records s WHERE s.cell_key = c.key) AS prefill_tokens,
           (SELECT sum(prefill_seconds) FROM shard_records s WHERE s.cell_key = c.key) AS prefill_seconds
      FROM sweep_cells sc JOIN cells c ON c.key = sc.cell_key
     WHERE sc.sweep_id = ${sweepId}
     ORDER BY c.model_name, c.task_name, c.strategy_name`;
  const slices = await db.$queryRaw<Array<{ cell_key: string; slice: string; nll: number; tokens: bigint }>>`
    SELECT s.cell_key, s.slice, sum(s.nll_sum) AS nll, sum(s.token_count) AS tokens
      FROM slice_stats s JOIN sweep_cells sc ON sc.cell_key = s.cell_key AND sc.sweep_id = ${sweepId}
     WHERE s.slice IN ('ar_hit', 'other')
     GROUP BY s.cell_key, s.slice`;
  const ppl = new Map<string, Record<string, number>>();
  for (const s of slices) {
    if (Number(s.tokens) === 0) continue;
    const entry = ppl.get(s.cell_key) ?? {};
    entry[s.slice] = Math.exp(s.nll / Number(s.tokens));
    ppl.set(s.cell_key, entry);
  }
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
      accuracy: acc,
      ci95: acc === null || n === 0 ? null : 1.96 * Math.sqrt(Math.max(acc * (1 - acc), 0) / n),
      perplexity: ppl.get(r.key) ?? {},
      prefillTokensPerSecond: secs && secs > 0 ? Number(r.prefill_tokens) / secs : null,
      promptsPerSecond: secs && secs > 0 ? n / secs : null,
      stateBytes: r.provenance?.model?.stateBytes ?? null,
      error: r.error,
    };
  });
  // the dashboard's query, with its quoted Grafana variable turned into a bind parameter
  const benchmarkRows = await db.$queryRawUnsafe<
    Array<{
      model: string;
      strategy: string;
      batch: number;
      n: number;
      tokens_per_sequence: number;
      implementation: string;
      seconds: number;
      tokens_per_second: number;
      baseline: string;
      baseline_seconds: number;
      gpu_name: string | null;
    }>
  >(PREFILL_BENCHMARK_SQL.replace("'$sweep'", '$1'), sweepId);
  const benchmarks: BenchmarkResult[] = benchmarkRows.map((r) => ({
    model: r.model,
    strategy: r.strategy,
    seqLen: r.n,
    batchSize: r.batch,
    processedLen: r.tokens_per_sequence,
    implementation: r.implementation,
    seconds: r.seconds,
    tokensPerSecond: r.tokens_per_second,
    baselineImplementation: r.baseline,
    baselineSeconds: r.baseline_seconds,
    gpuName: r.gpu_name,
  }));
  const recall = cells.filter((c) => TASKS[c.task as TaskName]?.kind !== 'throughput');
  const { axis, points } = paretoFrontier(recall, benchmarks);
  const [exec] = await db.$queryRaw<Array<{ shards: bigint; workers: bigint; loads: bigint; pairs: bigint }>>`
    SELECT count(*) AS shards,
           count(DISTINCT (s.worker->>'hostname', s.worker->>'pid')) AS workers,
           count(*) FILTER (WHERE s.load_seconds > 0) AS loads,
           count(DISTINCT (s.worker->>'hostname', s.worker->>'pid', c.model_name)) AS pairs
      FROM shard_records s
      JOIN sweep_cells sc ON sc.cell_key = s.cell_key AND sc.sweep_id = ${sweepId} AND NOT sc.reused
      JOIN cells c ON c.key = s.cell_key`;
  return {
    sweepId,
    name: sweep.name,
    status: sweep.status,
    createdAt: sweep.createdAt.toISOString(),
    finishedAt: sweep.finishedAt?.toISOString() ?? null,
    gitSha: sweep.gitSha,
    cells: recall,
    benchmarks,
    paretoAxis: axis,
    pareto: points,
    execution: { shards: Number(exec!.shards), workers: Number(exec!.workers), modelLoads: Number(exec!.loads), workerModelPairs: Number(exec!.pairs) },
  };
}

function executionLine(e: ExecutionSummary): string {
  return `Ran ${e.shards} shards on ${e.workers} workers with ${e.modelLoads} model loads (${e.workerModelPairs} worker-model pairs).`;
}

/**
 * A sweep may list one task twice with different parameters (set disjointness with the short set
 * first, then the long one): such entries are labelled with the parameters that differ.
 */
export function taskLabels(tasks: Array<{ name: string; params: Record<string, unknown> }>): string[] {
  const byName = new Map<string, Array<Record<string, unknown>>>();
  for (const t of tasks) byName.set(t.name, [...(byName.get(t.name) ?? []), t.params]);
  return tasks.map((t) => {
    const variants = byName.get(t.name)!;
    const differing = Object.keys(t.params)
      .filter((k) => variants.some((v) => JSON.stringify(v[k]) !== JSON.stringify(t.params[k])))
      .sort();
    return differing.length ? `${t.name} ${differing.map((k) => `${k}=${JSON.stringify(t.params[k])}`).join(' ')}` : t.name;
  });
}

/**
 * One point per (model, strategy): accuracy averaged over tasks. Throughput is the benchmark's
 * prompt tokens per second (all its points' tokens over all their median times) when every point
 * has benchmark rows, else prompts prefilled per second over the recall cells, so one frontier
 * never mixes units. A point is on the frontier when no other point is at least as good on both
 * axes and better on one.
 */
export function paretoFrontier(
  cells: CellResult[],
  benchmarks: BenchmarkResult[] = [],
): { axis: ParetoAxis; points: ParetoPoint[] } {
  const id = (model: string, strategy: string) => `${model}\u0000${strategy}`;
  const groups = new Map<string, CellResult[]>();
  for (const c of cells) {
    if (c.accuracy === null || c.promptsPerSecond === null) continue;
    const k = id(c.model, c.strategy);
    groups.set(k, [...(groups.get(k) ?? []), c]);
  }
  const benchByPoint = new Map<string, BenchmarkResult[]>();
  for (const b of benchmarks) {
    const k = id(b.model, b.strategy);
    benchByPoint.set(k, [...(benchByPoint.get(k) ?? []), b]);
  }
  const axis: ParetoAxis =
    groups.size > 0 && [...groups.keys()].every((k) => benchByPoint.has(k)) ? 'benchmark' : 'eval';
  const points = [...groups.entries()].map(([k, cs]) => {
    let throughput: number;
    if (axis === 'benchmark') {
      const bs = benchByPoint.get(k)!;
      const tokens = bs.reduce((s, b) => s + b.batchSize * b.seqLen, 0);
      throughput = tokens / bs.reduce((s, b) => s + b.seconds, 0);
    } else {
      const seconds = cs.reduce((s, c) => s + c.examples / c.promptsPerSecond!, 0);
      throughput = cs.reduce((s, c) => s + c.examples, 0) / seconds;
    }
    return {
      model: cs[0]!.model,
      strategy: cs[0]!.strategy,
      accuracy: cs.reduce((s, c) => s + c.accuracy!, 0) / cs.length,
      throughput,
      onFrontier: false,
    };
  });
  for (const p of points) {
    p.onFrontier = !points.some(
      (q) =>
        q !== p &&
        q.accuracy >= p.accuracy &&
        q.throughput >= p.throughput &&
        (q.accuracy > p.accuracy || q.throughput > p.throughput),
    );
  }
  return { axis, points: points.sort((a, b) => b.throughput - a.throughput) };
}

const pct = (x: number | null) => (x === null ? '-' : (100 * x).toFixed(1));
const num = (x: number | null | undefined, digits = 1) =>
  x === null || x === undefined
    ? '-'
    : x >= 1e6
      ? x.toExponential(1)
      : x >= 1000
        ? Math.round(x).toLocaleString('en-US')
        : x.toFixed(digits);

function resultRows(report: SweepReport): string[][] {
  return report.cells.map((c) => [
    c.model,
    c.taskLabel,
    c.strategy,
    c.status === 'done' ? `${pct(c.accuracy)} ± ${pct(c.ci95)}` : c.status,
    String(c.examples),
    num(c.perplexity.ar_hit, 2),
    num(c.perplexity.other, 2),
    num(c.prefillTokensPerSecond, 0),
    c.reused ? 'reused' : 'ran',
  ]);
}

/** A borderless-rows terminal table, shared by every command that prints one. */
export function textTable(head: string[]): Table.Table {
  return new Table({
    head,
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
}

const RESULT_HEAD = ['model', 'task', 'strategy', 'accuracy % (95% CI)', 'n', 'ppl AR-hit', 'ppl other', 'prefill tok/s', 'cell'];
const BENCHMARK_HEAD = ['model', 'strategy', 'batch', 'N', 'tokens/seq', 'ms', 'tok/s', 'baseline', 'baseline ms', 'speed-up'];
const paretoHead = (report: SweepReport) => ['model', 'strategy', 'mean accuracy %', PARETO_AXIS_LABEL[report.paretoAxis], 'frontier'];

function benchmarkRows(report: SweepReport): string[][] {
  return report.benchmarks.map((b) => [
    b.model,
    b.strategy,
    String(b.batchSize),
    String(b.seqLen),
    String(b.processedLen),
    (1000 * b.seconds).toFixed(2),
    num(b.tokensPerSecond, 0),
    b.baselineImplementation,
    (1000 * b.baselineSeconds).toFixed(2),
    `${(b.baselineSeconds / b.seconds).toFixed(2)}x`,
  ]);
}

export function renderTerminal(report: SweepReport): string {
  const results = textTable(RESULT_HEAD);
  results.push(...resultRows(report));
  const pareto = textTable(paretoHead(report));
  pareto.push(...report.pareto.map((p) => [p.model, p.strategy, pct(p.accuracy), num(p.throughput), p.onFrontier ? '*' : '']));
  const benchmark = textTable(BENCHMARK_HEAD);
  benchmark.push(...benchmarkRows(report));
  return [
    `Results of sweep ${report.sweepId} (${report.status})`,
    ...(report.cells.length ? [results.toString()] : []),
    ...(report.benchmarks.length
      ? ['', 'Prefill benchmark (median of timed runs; speed-up = baseline ms / ms)', benchmark.toString()]
      : []),
    ...(report.pareto.length
      ? ['', 'Quality-throughput Pareto frontier (* = on the frontier; accuracy averaged over tasks)', pareto.toString()]
      : []),
    ...(report.execution.shards ? ['', executionLine(report.execution)] : []),
  ].join('\n');
}

function markdownTable(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function renderMarkdown(report: SweepReport): string {
  const failed = report.cells.filter((c) => c.status === 'failed');
  return [
    `# Sweep ${report.sweepId}`,
    '',
    `Spec \`${report.name}\`, status **${report.status}**, started ${report.createdAt}` +
      (report.finishedAt ? `, finished ${report.finishedAt}` : '') +
      (report.gitSha ? `, git ${report.gitSha.slice(0, 12)}` : '') + '.',
    '',
    '## Results',
    '',
    'Accuracy is the mean `contains` score (or `exact`, as the spec says) with a 95% normal-approximation interval over examples. ' +
      'Perplexities are over the prompt tokens, split into AR hits (the bigram re-occurs in context) and Other. ' +
      'Prefill throughput is measured on the cell\'s own prompts by the worker that ran it.',
    '',
    markdownTable(RESULT_HEAD, resultRows(report)),
    ...(report.benchmarks.length
      ? [
          '',
          '## Prefill benchmark',
          '',
          'Random inputs; warm-up, then the median of the timed runs (CUDA events on a GPU). tok/s counts the prompt\'s tokens once (batch x N), ' +
            'so a strategy that reads the context twice pays for it. The baseline is SDPA attention at the same batch and N, timed in the same process.',
          '',
          markdownTable(BENCHMARK_HEAD, benchmarkRows(report)),
        ]
      : []),
    '',
    '## Pareto frontier',
    '',
    report.paretoAxis === 'benchmark'
      ? 'One point per (model, strategy); throughput is the prefill benchmark\'s prompt tokens per second, so reading the context twice costs what it costs.'
      : 'One point per (model, strategy); throughput counts prompts prefilled per second while the recall cells ran, so reading the context twice costs what it costs.',
    '',
    markdownTable(
      paretoHead(report),
      report.pareto.map((p) => [p.model, p.strategy, pct(p.accuracy), num(p.throughput), p.onFrontier ? 'yes' : '']),
    ),
    ...(failed.length
      ? ['', '## Failed cells', '', ...failed.map((c) => `- ${c.model} / ${c.task} / ${c.strategy}: ${c.error ?? 'unknown error'}`)]
      : []),
    '',
    '## Execution',
    '',
    executionLine(report.execution),
    '',
  ].join('\n');
}

export function writeReport(report: SweepReport, dir: string): { markdown: string; json: string } {
  mkdirSync(dir, { recursive: true });
  const markdown = join(dir, 'report.md');
  const json = join(dir, 'report.json');
  writeFileSync(markdown, renderMarkdown(report));
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  return { markdown, json };
}

const KEY_FIELDS = [
  ['modelRevision', 'model revision'],
  ['dtype', 'precision'],
  ['taskVersion', 'task version'],
  ['taskParams', 'task params'],
  ['taskDataDigest', 'task data'],
  ['strategyVersion', 'strategy version'],
  ['strategyParams', 'strategy params'],
  ['generation', 'generation settings'],
  ['scorer', 'scorer'],
  ['slices', 'slice settings'],
] as const;

/**
 * For each cell a sweep had to run, why: no earlier cell for this (model, task, strategy), or
 * which part of its key differs from the most recent one that was finished.
 */
export async function explainNewCells(db: Db, sweepId: string): Promise<string[]> {
  const fresh = await db.cell.findMany({
    where: { sweeps: { some: { sweepId, reused: false } } },
    orderBy: [{ modelName: 'asc' }, { taskName: 'asc' }, { strategyName: 'asc' }],
  });
  const lines: string[] = [];
  for (const cell of fresh) {
    const prior = await db.cell.findFirst({
      where: {
        modelName: cell.modelName,
        taskName: cell.taskName,
        strategyName: cell.strategyName,
        status: 'done',
        key: { not: cell.key },
        createdAt: { lte: cell.createdAt },
        // not another entry of the same sweep (one task listed twice with different params)
        sweeps: { none: { sweepId } },
      },
      orderBy: { finishedAt: 'desc' },
    });
    const what = `${cell.modelName} / ${cell.taskName} / ${cell.strategyName}`;
    if (!prior) {
      lines.push(`${what}: ran (first time evaluated)`);
      continue;
    }
    const changed = KEY_FIELDS.filter(([f]) => JSON.stringify(cell[f]) !== JSON.stringify(prior[f])).map(
      ([f, label]) => `${label} ${JSON.stringify(prior[f])} -> ${JSON.stringify(cell[f])}`,
    );
    lines.push(`${what}: ran because ${changed.length ? changed.join('; ') : 'its key changed'}`);
  }
  return lines;
}
