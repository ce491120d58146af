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
}

export interface SweepState {
  doneCells: string[];
  reusedCells: string[];
  failedCells: string[];
  /** recorded shard indices of cells not yet done */
  doneShards: Record<string, number[]>;
}

export interface RecordShardInput {
  sweepId: string;
  gitSha: string | null;
  modelName: string;
  // recall shards return scored examples, throughput shards timed points (workflows/catalog.ts)
  taskKind: TaskKind;
  shard: Shard;
  output: RunShardOutput;
}

export interface RecordShardResult {
  alreadyRecorded: boolean;
  cellDone: boolean;
}

export interface ResolveModelsInput {
  names: string[];
  dtype: string | null;
  device: string;
}
export type ResolvedModel = Cell['model'];
