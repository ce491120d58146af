// A sweep's results, read back from Postgres: accuracy per cell with a 95% confidence interval,
// per-slice perplexity (AR hits vs Other), prefill throughput, and the quality-throughput Pareto
// frontier over (model, strategy) points. Rendered for the terminal and as report files.
// Tested in test/unit/report.test.ts (pure parts) and the sweep integration tests.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Table from 'cli-table3';
import { type Db } from './prisma';

export interface CellResult {
  key: string;
  model: string;
  family: string;
  task: string;
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

export interface ParetoPoint {
  model: string;
  strategy: string;
  accuracy: number;
  promptsPerSecond: number;
  onFrontier: boolean;
}

export interface SweepReport {
  sweepId: string;
  name: string;
  status: string;
  createdAt: string;
  finishedAt: string | null;
  gitSha: string | null;
  cells: CellResult[];
  pareto: ParetoPoint[];
}

interface CellRow {
  key: string;
  model_name: string;
  model_family: string;
  task_name: string;
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
    SELECT c.key, c.model_name, c.model_family, c.task_name, c.strategy_name, c.status, c.error,
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
  const cells: CellResult[] = rows.map((r) => {
    const n = Number(r.n);
    const acc = r.mean_score === null ? null : Number(r.mean_score);
    const secs = r.prefill_seconds === null ? null : Number(r.prefill_seconds);
    return {
      key: r.key,
      model: r.model_name,
      family: r.model_family,
      task: r.task_name,
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
  return {
    sweepId,
    name: sweep.name,
    status: sweep.status,
    createdAt: sweep.createdAt.toISOString(),
    finishedAt: sweep.finishedAt?.toISOString() ?? null,
    gitSha: sweep.gitSha,
    cells,
    pareto: paretoFrontier(cells),
  };
}

/**
 * One point per (model, strategy): accuracy averaged over tasks, throughput as prompts prefilled
 * per second over all its cells. A point is on the frontier when no other point is at least as
 * good on both axes and better on one.
 */
export function paretoFrontier(cells: CellResult[]): ParetoPoint[] {
  const groups = new Map<string, CellResult[]>();
  for (const c of cells) {
    if (c.accuracy === null || c.promptsPerSecond === null) continue;
    const k = `${c.model}\u0000${c.strategy}`;
    groups.set(k, [...(groups.get(k) ?? []), c]);
  }
  const points = [...groups.values()].map((cs) => {
    const seconds = cs.reduce((s, c) => s + c.examples / c.promptsPerSecond!, 0);
    const examples = cs.reduce((s, c) => s + c.examples, 0);
    return {
      model: cs[0]!.model,
      strategy: cs[0]!.strategy,
      accuracy: cs.reduce((s, c) => s + c.accuracy!, 0) / cs.length,
      promptsPerSecond: examples / seconds,
      onFrontier: false,
    };
  });
  for (const p of points) {
    p.onFrontier = !points.some(
      (q) =>
        q !== p &&
        q.accuracy >= p.accuracy &&
        q.promptsPerSecond >= p.promptsPerSecond &&
        (q.accuracy > p.accuracy || q.promptsPerSecond > p.promptsPerSecond),
    );
  }
  return points.sort((a, b) => b.promptsPerSecond - a.promptsPerSecond);
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
    c.task,
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
const PARETO_HEAD = ['model', 'strategy', 'mean accuracy %', 'prompts/s (prefill)', 'frontier'];

export function renderTerminal(report: SweepReport): string {
  const results = textTable(RESULT_HEAD);
  results.push(...resultRows(report));
  const pareto = textTable(PARETO_HEAD);
  pareto.push(
    ...report.pareto.map((p) => [p.model, p.strategy, pct(p.accuracy), num(p.promptsPerSecond), p.onFrontier ? '*' : '']),
  );
  return [
    `Results of sweep ${report.sweepId} (${report.status})`,
    results.toString(),
    '',
    'Quality-throughput Pareto frontier (* = on the frontier; accuracy averaged over tasks)',
    pareto.toString(),
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
    '',
    '## Pareto frontier',
    '',
    'One point per (model, strategy); throughput counts prompts prefilled per second, so reading the context twice costs what it costs.',
    '',
    markdownTable(
      PARETO_HEAD,
      report.pareto.map((p) => [p.model, p.strategy, pct(p.accuracy), num(p.promptsPerSecond), p.onFrontier ? 'yes' : '']),
    ),
    ...(failed.length
      ? ['', '## Failed cells', '', ...failed.map((c) => `- ${c.model} / ${c.task} / ${c.strategy}: ${c.error ?? 'unknown error'}`)]
      : []),
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
