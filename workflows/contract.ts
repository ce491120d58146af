// The one contract between the orchestrator (TypeScript) and the inference worker (Python):
// task queues, activity names, error types, revision formats and payloads. `npm run generate`
// exports the payload schemas as JSON Schema to inference/twice_inference/contract.schema.json
// and the names to inference/twice_inference/contract-names.json, which the Python side reads
// instead of restating them; Python tests check the pydantic twins against the schemas. Change
// anything here first, then regenerate.
import { z } from 'zod';
import { LIMITS } from './catalog';

export const ORCHESTRATOR_QUEUE = 'twice-orchestrator';
export const GPU_QUEUE = 'twice-gpu';

// Python activity names are set explicitly on the Python side; SDKs name activities differently.
export const PYTHON_ACTIVITIES = {
  runShard: 'run_shard',
  describeTask: 'describe_task',
  describeWorker: 'describe_worker',
} as const;

// ApplicationFailure types: raised by the activities of both languages and named by the
// workflow's retry policies. Non-retryable ones are a property of the payload, not of the worker.
export const ERROR_TYPES = {
  invalidSpec: 'InvalidSpec',
  malformedShardResult: 'MalformedShardResult',
  // a shard's payload or task parameters are wrong: never retried
  invalidShard: 'InvalidShard',
  taskFailed: 'TaskFailed',
  modelLoadFailed: 'ModelLoadFailed',
  // e.g. cuda asked of a CPU-only worker: retried, elsewhere
  deviceUnavailable: 'DeviceUnavailable',
  // retried: the next attempt may land on a worker with more free memory
  gpuOutOfMemory: 'GpuOutOfMemory',
} as const;

// The prompt strategies a prefill benchmark times: they change what a prefill reads (N tokens, or
// 2N under JRT); the others lay out prompt text, which random ids do not have.
export const THROUGHPUT_STRATEGIES: readonly string[] = ['default', 'jrt_prompt'];

// ModelRef.revision, by where a model's weights come from. One regular expression per form (the
// syntax both languages share), whose groups are the parts: the Python worker parses a revision
// with these and nothing else.
export const REVISION_FORMATS = {
  // sha256 of the zoo's model.safetensors, checked when the model loads
  zoo: '^sha256:([0-9a-f]{64})$',
  // seeded random weights
  random: '^random:seed=([0-9]+)$',
  // a kernel-level operator and its implementation version
  operator: '^operator:([a-z0-9_]+)@v([0-9]+)$',
  // a Hugging Face checkpoint id and a ref (commit or branch) in its local layout
  hf: '^hf:([^@\\s]+)@([^@\\s]+)$',
  // a spec's checkpoint folder: the catalog model it is built like, and the folder's content digest
  folder: '^folder:([a-z0-9][a-z0-9._-]*)@([0-9a-f]{64})$',
} as const;

export const formatRevision = {
  zoo: (sha256: string) => `sha256:${sha256}`,
  random: (seed: number) => `random:seed=${seed}`,
  operator: (op: string, version: number) => `operator:${op}@v${version}`,
  hf: (hfId: string, ref: string) => `hf:${hfId}@${ref}`,
  folder: (like: string, digest: string) => `folder:${like}@${digest}`,
};

const digest = z.string().regex(/^[0-9a-f]{64}$/, 'expected a 64-character hex sha256 digest');

export const ModelRef = z
  .object({
    name: z.string().min(1),
    // weights digest for zoo models, HF revision for hub checkpoints, content digest for folders
    revision: z.string().min(1),
    // a spec's checkpoint folder (revision kind "folder") on the worker's machine; where the
    // weights are read, not what they are: the revision says that, and the cell key holds it
    folder: z.string().min(1).max(1024).optional(),
  })
  .strict();
export type ModelRef = z.infer<typeof ModelRef>;

export const TaskRef = z
  .object({
    name: z.string().min(1),
    version: z.number().int().positive(),
    // validated against the task's own schema (workflows/catalog.ts) before it gets here
    params: z.record(z.string(), z.unknown()),
  })
  .strict();
export type TaskRef = z.infer<typeof TaskRef>;

export const StrategyRef = z
  .object({
    name: z.string().min(1),
    version: z.number().int().positive(),
    params: z.record(z.string(), z.unknown()),
  })
  .strict();
export type StrategyRef = z.infer<typeof StrategyRef>;

export const GenerationSettings = z
  .object({
    maxNewTokens: z.number().int().positive(),
    stopAtNewline: z.boolean(),
    batchSize: z.number().int().positive(),
    // prompts longer than this are left-truncated, as the paper's harness does (2048 - 48)
    maxPromptTokens: z.number().int().positive(),
  })
  .strict();
export type GenerationSettings = z.infer<typeof GenerationSettings>;

export const ScorerRef = z
  .object({
    // none: a measurement task (prefill_throughput) that scores nothing
    name: z.enum(['contains', 'exact', 'none']),
    version: z.number().int().positive(),
  })
  .strict();
export type ScorerRef = z.infer<typeof ScorerRef>;

// Per-slice perplexity of the prompt tokens (AR hits vs Other, by bigram frequency and by
// in-context distance). The paper gives no thresholds or bin edges; these are ours, and they are
// part of a cell's key. Documented in inference/twice_inference/tasks/slices.py.
export const SliceSettings = z
  .object({
    // bigrams seen at least this often in the count table are "memorised", not recall
    frequencyThreshold: z.number().int().positive(),
    frequencyBinEdges: z.array(z.number().int().nonnegative()).min(1),
    distanceBinEdges: z.array(z.number().int().positive()).min(1),
    // path (relative to the worker's data root) of a bigram count table; null: no table, every
    // re-occurring bigram counts as infrequent
    bigramCounts: z.string().min(1).nullable(),
  })
  .strict();
export type SliceSettings = z.infer<typeof SliceSettings>;

export const RunShardInput = z
  .object({
    cellKey: digest,
    shardIndex: z.number().int().nonnegative(),
    exampleStart: z.number().int().nonnegative(),
    exampleEnd: z.number().int().positive(),
    model: ModelRef,
    task: TaskRef,
    strategy: StrategyRef,
    generation: GenerationSettings,
    scorer: ScorerRef,
    slices: SliceSettings.nullable(),
    device: z.enum(['auto', 'cpu', 'cuda']),
  })
  .strict()
  .refine((s) => s.exampleEnd > s.exampleStart, {
    message: 'exampleEnd must be greater than exampleStart',
    path: ['exampleEnd'],
  });
export type RunShardInput = z.infer<typeof RunShardInput>;

export const ExampleRecord = z
  .object({
    exampleId: z.number().int().nonnegative(),
    promptDigest: digest,
    // the decoded token ids the digest is over (the prompt as the model read it, after left
    // truncation); absent in results from workers older than the column that stores it
    prompt: z.string().max(LIMITS.promptChars).optional(),
    prediction: z.string(),
    gold: z.array(z.string()),
    score: z.number().min(0).max(1),
    promptTokens: z.number().int().nonnegative(),
    generatedTokens: z.number().int().nonnegative(),
  })
  .strict();
export type ExampleRecord = z.infer<typeof ExampleRecord>;

// Sums, not means, so Postgres can aggregate perplexity across shards exactly.
export const SliceSum = z
  .object({
    slice: z.string().min(1),
    nllSum: z.number().nonnegative(),
    tokenCount: z.number().int().nonnegative(),
  })
  .strict();
export type SliceSum = z.infer<typeof SliceSum>;

// Where a shard's seconds went on the worker. load, prefill, decode and nll hold the compute slot
// (the GPU); queue, data and scoring are what the worker overlaps with another shard's compute
// when it prefetches, so a sweep's busy share is their sum over its wall time. Results from workers
// older than these phases (a sweep's history, an offline results file) lack them: 0, unmeasured.
const phaseSeconds = z.number().nonnegative().default(0);
export const ShardTiming = z
  .object({
    // scheduled until running: on the server's task queue, then waiting for the compute slot
    queueSeconds: phaseSeconds,
    // building the task's examples and tokenizing them
    dataSeconds: phaseSeconds,
    loadSeconds: z.number().nonnegative(),
    prefillSeconds: z.number().nonnegative(),
    decodeSeconds: z.number().nonnegative(),
    // the per-slice perplexity pass over the prompts (a second prefill; 0 without slices)
    nllSeconds: phaseSeconds,
    // detokenizing, scoring, slice sums and the result payload
    scoringSeconds: phaseSeconds,
    prefillTokens: z.number().int().nonnegative(),
    batches: z.number().int().nonnegative(),
  })
  .strict();
export type ShardTiming = z.infer<typeof ShardTiming>;

export const WorkerInfo = z
  .object({
    workerVersion: z.string(),
    python: z.string(),
    torch: z.string(),
    device: z.string(),
    gpuName: z.string().nullable(),
    driver: z.string().nullable(),
    cuda: z.string().nullable(),
    hostname: z.string(),
    pid: z.number().int(),
  })
  .strict();
export type WorkerInfo = z.infer<typeof WorkerInfo>;

export const ModelInfo = z
  .object({
    family: z.string(),
    parameters: z.number().int().nonnegative(),
    stateBytes: z.number().int().nonnegative(),
    dtype: z.string(),
  })
  .strict();
export type ModelInfo = z.infer<typeof ModelInfo>;

// One timed prefill of a throughput task's point (one "example" = one (length, batch) pair):
// warm-up first, then `runs` timings (CUDA events on a GPU), their median and every run.
export const TimedPrefill = z
  .object({
    implementation: z.string().min(1),
    medianSeconds: z.number().positive(),
    minSeconds: z.number().positive(),
    runs: z.number().int().min(1),
    // every timed run's seconds in the order they ran, so an interval of the median can be
    // computed from them later (workflows/stats.ts, medianInterval); absent in results from
    // workers older than the column that stores it, which then get the old range
    runSeconds: z.array(z.number().positive()).min(1).max(LIMITS.prefillRuns).optional(),
    // prompt tokens per second: batchSize x seqLen / medianSeconds, so a strategy that reads the
    // context twice pays for it here
    tokensPerSecond: z.number().positive(),
  })
  .strict()
  .refine((t) => t.runSeconds === undefined || t.runSeconds.length === t.runs, {
    message: 'runSeconds must hold one entry per timed run (runs)',
    path: ['runSeconds'],
  });
export type TimedPrefill = z.infer<typeof TimedPrefill>;

export const ThroughputPoint = z
  .object({
    exampleId: z.number().int().nonnegative(),
    // the prompt's length N; the strategy decides what is prefilled (2N for JRT-Prompt)
    seqLen: z.number().int().positive(),
    batchSize: z.number().int().positive(),
    // tokens one timed run pushes through, per sequence (N, 2N, or N plus an encoder region)
    processedLen: z.number().int().positive(),
    measured: TimedPrefill,
    // the same (batch, N) through the attention baseline, timed in the same process
    baseline: TimedPrefill,
    // GPU name, driver, torch/triton/CUDA versions and the kernels' versions
    versions: z.record(z.string(), z.string()),
  })
  .strict();
export type ThroughputPoint = z.infer<typeof ThroughputPoint>;

export const RunShardOutput = z
  .object({
    cellKey: digest,
    shardIndex: z.number().int().nonnegative(),
    // recall tasks: one record per example; measurement tasks: none
    examples: z.array(ExampleRecord),
    // measurement tasks (prefill_throughput): one point per example; recall tasks: none
    measurements: z.array(ThroughputPoint),
    slices: z.array(SliceSum),
    timing: ShardTiming,
    worker: WorkerInfo,
    model: ModelInfo,
  })
  .strict();
export type RunShardOutput = z.infer<typeof RunShardOutput>;

// What the Python worker heartbeats while a shard runs (progress and liveness). A retried shard
// runs again from its start: shards are small, and only whole shards are recorded.
export const ShardHeartbeat = z
  .object({
    examplesDone: z.number().int().nonnegative(),
  })
  .strict();
export type ShardHeartbeat = z.infer<typeof ShardHeartbeat>;

export const DescribeTaskInput = z.object({ task: TaskRef }).strict();
export type DescribeTaskInput = z.infer<typeof DescribeTaskInput>;

export const DescribeTaskOutput = z
  .object({
    numExamples: z.number().int().nonnegative(),
    // digest of the examples' source data (generator version + params for synthetic tasks)
    dataDigest: digest,
  })
  .strict();
export type DescribeTaskOutput = z.infer<typeof DescribeTaskOutput>;

// Every schema the Python side mirrors; exported as JSON Schema by `npm run generate`.
export const CROSS_LANGUAGE_SCHEMAS = {
  RunShardInput,
  RunShardOutput,
  ShardHeartbeat,
  WorkerInfo,
  DescribeTaskInput,
  DescribeTaskOutput,
} as const;
