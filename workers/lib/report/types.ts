// The shape of a sweep's results as the report and the web dashboard read them.
import type { ParetoAxis, ParetoInterval, ParetoPoint } from '../../../workflows/pareto';
import type { Interval } from '../../../workflows/stats';
import type { AnalyticCost } from '../analytic-cost';

/** One (model, strategy)'s costs at the analytic axes' stated length (workers/lib/report/analytic.ts). */
export interface AnalyticPoint extends AnalyticCost {
  model: string;
  strategy: string;
}

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
  /** examples scored correct (scores are 0 or 1) */
  correct: number;
  accuracy: number | null;
  /** Wilson 95% interval of the accuracy over examples */
  ci95: Interval | null;
  perplexity: Record<string, number>;
  /** why `perplexity` is left empty for this cell's model, when it is hidden */
  perplexityHidden?: string;
  prefillTokensPerSecond: number | null;
  /** prompts prefilled per second: JRT-Prompt's doubled input shows up here */
  promptsPerSecond: number | null;
  /** recorded by the worker from the loaded model (provenance), with its state after the cell's longest prompt */
  parameters: number | null;
  stateBytes: number | null;
  error: string | null;
  taskParams?: Record<string, unknown>;
  strategyParams?: Record<string, unknown>;
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
  /** median of the timed runs */
  seconds: number;
  minSeconds: number | null;
  /** every timed run's seconds; null for rows recorded before they were kept */
  runSeconds: number[] | null;
  /** prompt tokens (batch x seqLen) per second */
  tokensPerSecond: number;
  baselineImplementation: string;
  baselineSeconds: number;
  gpuName: string | null;
}

/** A JRT layout's accuracy minus default's for one model, on the same examples of every task. */
export interface JrtMargin {
  model: string;
  /** the JRT layout compared with default: jrt_prompt, or jrt_question_first */
  strategy: string;
  examples: number;
  /** Newcombe interval of the paired difference */
  margin: Interval;
}

/** One bin of a Figure 3 panel (docs/protocol.md, Perplexity protocol). */
export interface PanelBin {
  panel: 'recall-freq' | 'recall-dist' | 'other-freq';
  /** "[lo, hi)" as the worker names it, e.g. "10-100" or "1000-inf" */
  bin: string;
  lo: number;
  perplexity: number;
  tokens: number;
}

/** A cell of the perplexity task: AR hits vs Other over the scored tokens, and the panels. */
export interface PerplexityResult {
  key: string;
  model: string;
  taskLabel: string;
  strategy: string;
  status: string;
  reused: boolean;
  sequences: number;
  arHit: number | null;
  arHitTokens: number;
  other: number | null;
  otherTokens: number;
  panels: PanelBin[];
  error: string | null;
  /** the protocol it ran under, every open choice stated */
  protocol: string;
}

export interface SweepReport {
  sweepId: string;
  name: string;
  status: string;
  /** the sweep that completed the cells of a sweep that had ended failed */
  completedBy?: string | null;
  createdAt: string;
  finishedAt: string | null;
  gitSha: string | null;
  /** recall cells; throughput cells are summarised in `benchmarks` */
  cells: CellResult[];
  benchmarks: BenchmarkResult[];
  /** cells of the perplexity task */
  perplexity: PerplexityResult[];
  jrtMargins: JrtMargin[];
  paretoAxis: ParetoAxis;
  /** what the frontier's throughput bars are (PARETO_INTERVAL_LABEL says it in words) */
  paretoInterval: ParetoInterval;
  pareto: ParetoPoint[];
  /** costs counted from each model's config, for the Pareto frontier's analytic axes */
  analytic: { seqLen: number; points: AnalyticPoint[] };
  /** cells of the paper's grids beside the paper's numbers (workers/lib/paper-numbers.ts) */
  paper?: PaperComparison[];
  /** null when the caller asked to leave it out (the web dashboard does not show it) */
  execution: ExecutionSummary | null;
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

/** One report cell beside the paper's number for it (workers/lib/paper-numbers.ts). */
export interface PaperComparison {
  model: string;
  task: string;
  strategy: string;
  /** percent */
  ours: number;
  paper: number;
  /** ours - paper, in points */
  difference: number;
  source: string;
}
