// Workflow inputs and outputs, queries, and the TypeScript activities' payloads. The CLI, the
// workers and the web/Slack front ends import these; nobody retypes a query name.
import { defineQuery } from '@temporalio/workflow';
import { type RunShardOutput } from './contract';
import { type TaskKind } from './catalog';
import { type Cell, type ResolvedSweep, type Shard, type SweepSpec } from './sweep-spec';

export interface SweepWorkflowInput {
  sweepId: string;
  specFile: string;
  specYaml: string;
  spec: SweepSpec;
  gitSha: string | null;
  /** Set when the workflow continues as new: resolution and counters carry over. */
  continued?: {
    resolved: ResolvedSweep;
    failures: Array<{ cellKey: string; error: string }>;
    startedAt: number;
    runs: number;
    /** the cells other sweeps held at the last claim, which a continued run does not repeat */
    waitingOn?: Record<string, string>;
    /** set by continue-as-new: the sweep's cells are registered and claimed, not to be again */
    registered?: boolean;
  };
}

export interface SweepProgress {
  sweepId: string;
  phase: 'resolving' | 'running' | 'finishing' | 'completed' | 'failed' | 'cancelled';
  cells: { total: number; reused: number; done: number; failed: number };
  shards: { total: number; done: number; failed: number; inFlight: number };
  examples: { total: number; done: number };
  /** model of the most recently started shard: work runs model-major */
  currentModel: string | null;
  startedAt: number;
  runs: number; // workflow runs so far (continue-as-new count + 1)
  /** the GPU pool's progress line ("pool (kubernetes): 3/4 pods ready ..."), null before it starts */
  pool?: string | null;
  /** cells another sweep has claimed and is computing: cell key -> that sweep's id */
  waitingOn: Record<string, string>;
}

export interface SweepResult {
  sweepId: string;
  status: 'completed' | 'failed';
  cells: SweepProgress['cells'];
  runs: number;
  failures: Array<{ cellKey: string; error: string }>;
}

export const sweepProgressQuery = defineQuery<SweepProgress>('sweepProgress');

export interface PlanWorkflowInput {
  spec: SweepSpec;
}
export interface PlannedCell {
  key: string;
  model: string;
  task: string;
  strategy: string;
  numExamples: number;
  status: 'new' | 'done' | 'partial' | 'failed';
  examplesDone: number;
  /** shards recorded, and shards recorded plus those this spec's shard size still cuts */
  shardsDone: number;
  numShards: number;
}
export interface PlanResult {
  resolved: ResolvedSweep;
  cells: PlannedCell[];
  skipped: string[];
}

export interface RegisterSweepInput {
  sweepId: string;
  workflowId: string;
  specFile: string;
  specYaml: string;
  resolved: ResolvedSweep;
  gitSha: string | null;
  retryFailed: boolean;
  /** also claim the cells still to compute, as claimCells does (patch register-claims) */
  claim?: boolean;
}

/** registerSweep's answer: with `claim`, the cells another live sweep holds (claimCells' answer) */
export type RegisteredSweep = SweepState & Partial<ClaimCellsResult>;

export interface SweepState {
  doneCells: string[];
  reusedCells: string[];
  failedCells: string[];
  /** recorded example ranges [start, end) of cells not yet done */
  doneRanges: Record<string, Array<[number, number]>>;
}

export interface ClaimCellsResult {
  /** cells another live sweep has claimed: cell key -> that sweep's id */
  waitingOn: Record<string, string>;
  /** cells found done when claiming (absent in results recorded before it was returned) */
  done?: string[];
}

export interface RecordShardInput {
  modelName: string;
  // recall shards return scored examples, throughput shards timed points (workflows/catalog.ts)
  taskKind: TaskKind;
  shard: Shard;
  output: RunShardOutput;
}

/** Finished shards written in one transaction, in the order they finished. */
export interface RecordShardsInput {
  sweepId: string;
  gitSha: string | null;
  shards: RecordShardInput[];
}

export interface RecordShardResult {
  alreadyRecorded: boolean;
  /** this shard completed its cell (or, when already recorded, the cell is done) */
  cellDone: boolean;
  /** why the worker's result cannot be recorded; its cell fails, and retrying cannot help */
  malformed: string | null;
}

export interface ResolveModelsInput {
  names: string[];
  dtype: string | null;
  device: string;
}
export type ResolvedModel = Cell['model'];

/** What a schedule decides besides its spec; stored in the schedule's action, fixed at creation. */
export interface NightlySettings {
  /** family-wise significance level for regressions, Holm-corrected over the cells compared */
  alpha: number;
  /** a sweep every night is also compared with; null compares only with the previous night */
  baselineSweepId: string | null;
}

/** The argument a schedule starts nightlyWorkflow with: the spec as it was at creation. */
export interface NightlyWorkflowInput {
  scheduleId: string;
  specFile: string;
  specYaml: string;
  spec: SweepSpec;
  specDigest: string;
  gitSha: string | null;
  settings: NightlySettings;
}

export interface NightlySummarizeInput {
  scheduleId: string;
  sweepId: string;
  nightlyWorkflowId: string;
  settings: NightlySettings;
}

/** One cell whose accuracy dropped significantly against a reference sweep. */
export interface NightlyRegression {
  against: 'previous' | 'baseline';
  referenceSweepId: string;
  model: string;
  task: string;
  strategy: string;
  /** examples right in the reference and wrong now, and the reverse */
  flippedToWrong: number;
  flippedToRight: number;
  accuracyBefore: number;
  accuracyAfter: number;
  pAdjusted: number;
}

export interface NightlySummary {
  sweepId: string;
  status: string;
  previousSweepId: string | null;
  baselineSweepId: string | null;
  cells: { total: number; reused: number; ran: number };
  /** one line per cell that ran tonight, saying which key field changed */
  why: string[];
  /** cells compared with each reference (matched by model/task/strategy) */
  compared: { previous: number; baseline: number };
  regressions: NightlyRegression[];
}

export interface NightlyResult {
  sweepId: string;
  status: SweepResult['status'];
  summary: NightlySummary;
}
