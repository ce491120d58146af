// The report's tables, for the terminal and for report.md.
import Table from 'cli-table3';
import { PARETO_AXIS_LABEL, PARETO_INTERVAL_LABEL, type ParetoInterval } from '../../../workflows/pareto';
import { medianInterval, type Interval } from '../../../workflows/stats';
import { PAPER_HEAD, paperRows } from '../paper-numbers';
import { ANALYTIC_AXIS_LABEL, analyticFrontier, analyticSources } from './analytic';
import type { ExecutionSummary, SweepReport } from './types';

export const pct = (x: number | null) => (x === null ? '-' : (100 * x).toFixed(1));
/** an accuracy with its interval: "62.5 [55.1, 69.4]" */
export const pctInterval = (x: number | null, ci: Interval | null) => (x === null ? '-' : ci === null ? pct(x) : `${pct(x)} [${pct(ci.lo)}, ${pct(ci.hi)}]`);
/** a signed difference in points with its interval: "+12.0 [+4.1, +19.6]" */
export const signedInterval = (ci: Interval) => {
  const f = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)}`;
  return `${f(ci.estimate)} [${f(ci.lo)}, ${f(ci.hi)}]`;
};
export const num = (x: number | null | undefined, digits = 1) =>
  x === null || x === undefined ? '-' : x >= 1e6 ? x.toExponential(1) : x >= 1000 ? Math.round(x).toLocaleString('en-US') : x.toFixed(digits);

function resultRows(report: SweepReport): string[][] {
  return report.cells.map((c) => [
    c.model,
    c.taskLabel,
    c.strategy,
    c.status === 'done' ? pctInterval(c.accuracy, c.ci95) : c.status,
    String(c.examples),
    c.perplexityHidden ? 'n/a*' : num(c.perplexity.ar_hit, 2),
    c.perplexityHidden ? 'n/a*' : num(c.perplexity.other, 2),
    num(c.prefillTokensPerSecond, 0),
    c.reused ? 'reused' : 'ran',
  ]);
}

const PERPLEXITY_HEAD = ['model', 'task', 'sequences', 'ppl AR hits', 'AR-hit tokens', 'ppl other', 'other tokens', 'AR / other', 'cell'];
const perplexityRows = (report: SweepReport) =>
  report.perplexity.map((p) => [
    p.model,
    p.taskLabel,
    String(p.sequences),
    p.status === 'done' ? num(p.arHit, 2) : p.status,
    String(p.arHitTokens),
    num(p.other, 2),
    String(p.otherTokens),
    p.arHit !== null && p.other ? (p.arHit / p.other).toFixed(2) : '-',
    p.reused ? 'reused' : 'ran',
  ]);

/** Which models recall best and worst on the scored tokens, in one line. */
export function figure3Summary(report: SweepReport): string {
  const done = report.perplexity.filter((p) => p.arHit !== null && p.other !== null);
  if (done.length === 0) return '';
  const byAr = [...done].sort((a, b) => a.arHit! - b.arHit!);
  const list = byAr.map((p) => `${p.model} ${num(p.arHit, 2)} (other ${num(p.other, 2)})`).join(', ');
  return `AR-hit perplexity from lowest to highest: ${list}. The paper's Figure 3 pattern is a gap on AR hits between attention and the recurrent models that closes on Other tokens; the AR / other column shows whether it appears here.`;
}

const hiddenNote = (report: SweepReport) => {
  const hidden = [...new Set(report.cells.filter((c) => c.perplexityHidden).map((c) => c.model))];
  return hidden.length
    ? `* n/a: ${hidden.join(', ')} were trained on answers only, never on context tokens, so their prompt perplexities (1e6 and more) mean nothing and are not shown; the perplexity task's models (zoo-lm-*) are.`
    : '';
};

/** A borderless-rows terminal table, shared by every command that prints one. */
export function textTable(head: string[]): Table.Table {
  return new Table({
    head,
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
}

const RESULT_HEAD = ['model', 'task', 'strategy', 'accuracy % [95% CI]', 'n', 'ppl AR-hit', 'ppl other', 'prefill tok/s', 'cell'];
const BENCHMARK_HEAD = ['model', 'strategy', 'batch', 'N', 'tokens/seq', 'ms', 'ms 95% CI', 'tok/s', 'baseline', 'baseline ms', 'speed-up'];
const paretoHead = (report: SweepReport) => ['model', 'strategy', 'mean accuracy %', PARETO_AXIS_LABEL[report.paretoAxis], 'interval', 'frontier'];
/** what the frontier table's interval column holds, as a sentence ('' on the eval axis) */
export const intervalSentence = (kind: ParetoInterval) => (kind === 'none' ? '' : `Interval: ${PARETO_INTERVAL_LABEL[kind]}.`);
/** a benchmark row's interval of its median in ms, "-" for rows without per-run seconds */
export const msInterval = (runSeconds: number[] | null) => {
  if (!runSeconds?.length) return '-';
  const { lo, hi } = medianInterval(runSeconds);
  return `${(1000 * lo).toFixed(2)}-${(1000 * hi).toFixed(2)}`;
};
const JRT_HEAD = ['model', 'strategy', 'paired examples', 'strategy - default, points [95% CI]'];

/** "*" on the frontier, "?" where the throughput intervals leave the verdict open */
const frontierMark = (p: SweepReport['pareto'][number], yes: string) => `${p.onFrontier ? yes : ''}${p.settled ? '' : '?'}`;
const paretoRows = (report: SweepReport, yes: string) =>
  report.pareto.map((p) => [
    p.model,
    p.strategy,
    pct(p.accuracy),
    num(p.throughput),
    p.throughputLo === p.throughputHi ? '-' : `${num(p.throughputLo)}-${num(p.throughputHi)}`,
    frontierMark(p, yes),
  ]);
const jrtRows = (report: SweepReport) => report.jrtMargins.map((m) => [m.model, m.strategy, String(m.examples), signedInterval(m.margin)]);

function benchmarkRows(report: SweepReport): string[][] {
  return report.benchmarks.map((b) => [
    b.model,
    b.strategy,
    String(b.batchSize),
    String(b.seqLen),
    String(b.processedLen),
    (1000 * b.seconds).toFixed(2),
    msInterval(b.runSeconds),
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
  pareto.push(...paretoRows(report, '*'));
  const jrt = textTable(JRT_HEAD);
  jrt.push(...jrtRows(report));
  const benchmark = textTable(BENCHMARK_HEAD);
  benchmark.push(...benchmarkRows(report));
  const perplexity = textTable(PERPLEXITY_HEAD);
  perplexity.push(...perplexityRows(report));
  const note = hiddenNote(report);
  return [
    `Results of sweep ${report.sweepId} (${sweepStatusText(report.status, report.completedBy)})`,
    ...(report.cells.length ? [results.toString(), ...(note ? [note] : [])] : []),
    ...(report.perplexity.length
      ? ['', "Perplexity task (the paper's Figure 3 protocol): AR hits vs Other on the scored tokens", perplexity.toString(), figure3Summary(report)]
      : []),
    ...(report.benchmarks.length
      ? ['', 'Prefill benchmark (median of timed runs with its 95% interval; speed-up = baseline ms / ms)', benchmark.toString()]
      : []),
    ...(report.jrtMargins.length ? ['', 'JRT margins per model and layout (paired over the same examples)', jrt.toString()] : []),
    ...(report.pareto.length
      ? [
          '',
          `Quality-throughput Pareto frontier on ${PARETO_AXIS_LABEL[report.paretoAxis]} (* = on the frontier, ? = the throughput intervals leave it open; accuracy averaged over tasks)`,
          pareto.toString(),
          ...(report.paretoInterval === 'none' ? [] : [intervalSentence(report.paretoInterval)]),
        ]
      : []),
    ...paperSection(
      report,
      (head, rows) => {
        const t = textTable(head);
        t.push(...rows);
        return t.toString();
      },
      'Beside the paper (Arora et al. 2024; difference = ours - paper, in points)',
    ),
    ...(report.execution?.shards ? ['', executionLine(report.execution)] : []),
  ].join('\n');
}

function executionLine(e: ExecutionSummary): string {
  return `Ran ${e.shards} shards on ${e.workers} workers with ${e.modelLoads} model loads (${e.workerModelPairs} worker-model pairs).`;
}

/** The "beside the paper" block, when some cells are cells of the paper's grids. */
function paperSection(report: SweepReport, table: (head: string[], rows: string[][]) => string, title: string): string[] {
  if (!report.paper?.length) return [];
  return ['', title, table(PAPER_HEAD, paperRows(report.paper))];
}

function markdownTable(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function renderMarkdown(report: SweepReport): string {
  const failed = report.cells.filter((c) => c.status === 'failed');
  return [
    `# Sweep ${report.sweepId}`,
    '',
    `Spec \`${report.name}\`, status **${sweepStatusText(report.status, report.completedBy)}**, started ${report.createdAt}` +
      (report.finishedAt ? `, finished ${report.finishedAt}` : '') +
      (report.gitSha ? `, git ${report.gitSha.slice(0, 12)}` : '') +
      '.',
    '',
    '## Results',
    '',
    'Accuracy is the mean `contains` score (or `exact`, as the spec says) with its 95% Wilson interval over examples. ' +
      'Perplexities are over the prompt tokens, split into AR hits (the bigram re-occurs in context) and Other. ' +
      "Prefill throughput is measured on the cell's own prompts by the worker that ran it.",
    '',
    ...(report.cells.length ? ['![Accuracy heatmap](heatmap.svg)', '', markdownTable(RESULT_HEAD, resultRows(report))] : []),
    ...(hiddenNote(report) ? ['', hiddenNote(report)] : []),
    ...(report.perplexity.length
      ? [
          '',
          "## Perplexity (the paper's Figure 3 protocol)",
          '',
          'Teacher-forced perplexity on the scored tokens of each sequence, split into AR hits and Other. The protocol, with every choice the paper leaves open (docs/protocol.md, Perplexity protocol):',
          '',
          ...[...new Set(report.perplexity.map((p) => p.protocol))].map((t) => `- ${t}`),
          '',
          markdownTable(PERPLEXITY_HEAD, perplexityRows(report)),
          '',
          figure3Summary(report),
          ...(report.perplexity.some((p) => p.panels.length)
            ? [
                '',
                '![AR hits by training frequency](fig3-recall-frequency.svg)',
                '![AR hits by distance](fig3-recall-distance.svg)',
                '![Other by training frequency](fig3-other-frequency.svg)',
              ]
            : []),
        ]
      : []),
    ...(report.benchmarks.length
      ? [
          '',
          '## Prefill benchmark',
          '',
          "Random inputs; warm-up, then the median of the timed runs (CUDA events on a GPU). tok/s counts the prompt's tokens once (batch x N), " +
            'so a strategy that reads the context twice pays for it. The baseline is SDPA attention at the same batch and N, timed in the same process. ' +
            'ms 95% CI is a distribution-free interval of the median from the order statistics of the timed runs ("-" for rows recorded before per-run timings were kept).',
          '',
          markdownTable(BENCHMARK_HEAD, benchmarkRows(report)),
        ]
      : []),
    '',
    ...(report.jrtMargins.length
      ? [
          '## JRT-Prompt margin',
          '',
          "Per model, each JRT layout's accuracy (jrt_prompt: the context read twice; jrt_question_first: the question first, then the context twice) minus default's on the same examples, pooled over tasks, with a 95% Newcombe interval for paired proportions.",
          '',
          markdownTable(JRT_HEAD, jrtRows(report)),
          '',
        ]
      : []),
    '## Pareto frontier',
    '',
    report.paretoAxis === 'benchmark'
      ? "One point per (model, strategy); throughput is the prefill benchmark's prompt tokens per second, so reading the context twice costs what it costs."
      : 'One point per (model, strategy); throughput counts prompts prefilled per second while the recall cells ran, so reading the context twice costs what it costs.',
    '',
    `Axis: ${PARETO_AXIS_LABEL[report.paretoAxis]}. "?" marks a point whose place on the frontier its throughput interval does not settle. ${intervalSentence(report.paretoInterval)}`,
    '',
    '![Pareto frontier](pareto.svg)',
    '',
    markdownTable(paretoHead(report), paretoRows(report, 'yes')),
    ...analyticSection(report),
    ...paperSection(
      report,
      (head, rows) => `\n${markdownTable(head, rows)}`,
      "## Beside the paper\n\nThe paper's number for each cell of its grids (Arora et al. 2024, Tables 1-4; specs/paper/paper-numbers.json); difference = ours - paper, in points.",
    ),
    ...(failed.length ? ['', '## Failed cells', '', ...failed.map((c) => `- ${c.model} / ${c.task} / ${c.strategy}: ${c.error ?? 'unknown error'}`)] : []),
    ...(report.execution ? ['', '## Execution', '', executionLine(report.execution)] : []),
    '',
  ].join('\n');
}

/** The frontier on each analytic axis, each chart and table naming its axis and its figures' sources. */
function analyticSection(report: SweepReport): string[] {
  const axes = (['flops', 'state'] as const).map((axis) => ({ axis, points: analyticFrontier(report, axis) })).filter((a) => a.points.length);
  if (!axes.length) return [];
  return [
    '',
    '## Pareto frontier on analytic axes',
    '',
    `The same points on costs counted from each model's config instead of timed, identical on every machine: prefill FLOPs per prompt token and decoding-state bytes per sequence, both at ${report.analytic.seqLen.toLocaleString('en-US')} prompt tokens. A strategy that reads the prompt r times pays r passes at r times the length. Lower is better.`,
    ...axes.flatMap(({ axis, points }) => [
      '',
      `Axis: ${ANALYTIC_AXIS_LABEL[axis]}. Figures: ${analyticSources(report.analytic.points, axis)}.`,
      '',
      `![Pareto frontier: ${ANALYTIC_AXIS_LABEL[axis]}](pareto-${axis}.svg)`,
      '',
      markdownTable(
        ['model', 'strategy', 'mean accuracy %', ANALYTIC_AXIS_LABEL[axis], 'frontier'],
        points.map((p) => [p.model, p.strategy, pct(p.accuracy), num(p.throughput), p.onFrontier ? 'yes' : '']),
      ),
    ]),
  ];
}

/** A sweep's status as people read it: one that ended failed and was completed by another says so. */
export function sweepStatusText(status: string, completedBy?: string | null): string {
  return status === 'completed' && completedBy ? `completed later by ${completedBy}` : status;
}
