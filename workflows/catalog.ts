// What a sweep spec may name: tasks, prompt strategies and scorers, each with its version and a
// strict schema for its parameters. The Python worker implements the same names and versions
// (inference/twice_inference/tasks/registry.py, strategies.py); npm run generate exports this
// catalog to task-catalog.json and inference/tests/test_task_catalog.py checks they agree.
// Bumping a version here changes the keys of every cell that uses it, so those cells re-run.
import { z } from 'zod';

// Every parameter is bounded, here and only here: npm run generate writes these schemas into
// task-catalog.json, and inference/tests/test_task_catalog.py checks that the worker's own models
// have exactly these bounds, so a spec that passes `twice plan` is one the worker accepts.
export const LIMITS = {
  // examples per cell: keeps a cell's expansion, its rows and its run time finite
  examples: 100_000,
  // rows read from a real dataset before skips
  datasetRows: 1_000_000,
  seed: 2 ** 32 - 1,
  // the synthetic vocabularies (inference/twice_inference/tokenizers.py): distinct MQAR keys and
  // values, document attributes, and half of the set-disjointness elements
  kvPairs: 512,
  facts: 13,
  setSize: 768,
  contextTokens: 32_768,
  // prefill benchmark: the paper's largest point is 16k tokens at batch 16
  prefillLength: 131_072,
  prefillBatch: 1024,
  prefillRuns: 1000,
  listItems: 32,
  // perplexity protocol: corpus path length, and the largest training count a bin may name
  pathLength: 1024,
  bigramCount: 2 ** 31 - 1,
  repeats: 8,
  shots: 16,
  // characters of an example's prompt text a shard result carries; a longer prompt keeps its tail
  // (what the model read last, as the engine's left truncation does): 2,000 tokens of a document
  // task are ~10k characters, so only prompts far past the paper's lengths are cut
  promptChars: 262_144,
} as const;

const count = z.number().int().min(1);
const numExamples = count.max(LIMITS.examples).default(200);
const seed = z.number().int().min(0).max(LIMITS.seed).default(0);

const dataTask = {
  // a local directory holding the dataset (validation.jsonl or *.parquet); default: TWICE_DATA_DIR
  dataDir: z.string().min(1).optional(),
  limit: count.max(LIMITS.datasetRows).optional(),
  // the paper cuts each document to 950 tokens of the evaluated model's tokenizer
  contextTokens: count.max(LIMITS.contextTokens).default(950),
};

// `kind`: recall tasks produce scored examples; throughput tasks produce timed prefill points
// (one "example" per (length, batch) pair) and score nothing.
export const TASKS = {
  mqar: {
    version: 1,
    kind: 'recall',
    synthetic: true,
    // one-word answers: a substring test would count "v9" as found in "v90"
    scorer: 'exact',
    params: z.object({ numExamples, seed, numKvPairs: count.max(LIMITS.kvPairs).default(16) }).strict(),
  },
  synthetic_doc_qa: {
    version: 1,
    kind: 'recall',
    synthetic: true,
    scorer: 'exact',
    params: z.object({ numExamples, seed, numFacts: count.max(LIMITS.facts).default(8) }).strict(),
  },
  set_disjointness: {
    version: 1,
    kind: 'recall',
    synthetic: true,
    scorer: 'exact',
    params: z
      .object({
        numExamples,
        seed,
        // [size of A, size of B]
        sizes: z
          .array(z.array(count.max(LIMITS.setSize)).length(2))
          .min(1)
          .max(LIMITS.listItems)
          .default([
            [4, 16],
            [16, 4],
          ]),
      })
      .strict(),
  },
  // the paper's metric: any gold answer as a case-insensitive substring of the generation.
  // v2: windows and predictions detokenized as Hugging Face decode does, a missed anchor takes the
  // released code's end-of-document window, a prepended BOS counts toward the window
  fda: { version: 2, kind: 'recall', synthetic: false, scorer: 'contains', params: z.object(dataTask).strict() },
  swde: { version: 2, kind: 'recall', synthetic: false, scorer: 'contains', params: z.object(dataTask).strict() },
  squad: { version: 2, kind: 'recall', synthetic: false, scorer: 'contains', params: z.object(dataTask).strict() },
  triviaqa: { version: 2, kind: 'recall', synthetic: false, scorer: 'contains', params: z.object(dataTask).strict() },
  drop: { version: 2, kind: 'recall', synthetic: false, scorer: 'contains', params: z.object(dataTask).strict() },
  nq: {
    version: 2,
    kind: 'recall',
    synthetic: false,
    scorer: 'contains',
    params: z
      .object({
        ...dataTask,
        variant: z.union([z.literal(512), z.literal(1024), z.literal(2048)], { error: 'one of 512, 1024, 2048' }).default(1024),
      })
      .strict(),
  },
  // The paper's prefill benchmark (docs/protocol.md, Prefill throughput): random inputs at each (length, batch) pair, warm-up,
  // then the median of `runs` timings, beside SDPA attention at the same (batch, length) in the
  // same process. Runs on LMs (model-level) and on the operator entries of the model catalog
  // (kernel-level: bf16, 16 heads, feature dim 16, value dim 64).
  prefill_throughput: {
    version: 1,
    kind: 'throughput',
    synthetic: true,
    scorer: 'none',
    params: z
      .object({
        lengths: z.array(count.max(LIMITS.prefillLength)).min(1).max(LIMITS.listItems).default([2048, 8192]),
        batchSizes: z.array(count.max(LIMITS.prefillBatch)).min(1).max(LIMITS.listItems).default([16]),
        runs: z.number().int().min(10).max(LIMITS.prefillRuns).default(10),
        seed,
      })
      .strict(),
  },
  // The paper's Figure 3 protocol over a local corpus (docs/protocol.md, Perplexity protocol):
  // sequences of `sequenceTokens`, the last `scoredTokens` scored, split into AR hits and Other by
  // the spec's slice settings; the recall-frequency panel keeps repeats at least
  // `recallMinDistance` apart, the recall-distance panel bigrams seen fewer than
  // `distanceMaxCount` times in training. v1 is the protocol's version.
  perplexity: {
    version: 1,
    kind: 'perplexity',
    synthetic: true,
    scorer: 'none',
    params: z
      .object({
        // synthetic:<language> (a generated language, e.g. synthetic:repeats-v1), or a JSONL file
        // of {"text"} or {"ids"} documents under the worker's data root
        corpus: z
          .string()
          .min(1)
          .max(LIMITS.pathLength)
          .refine((p) => !p.split(/[\\/]/).includes('..'), 'a path under the data root, without ".."'),
        numExamples: count.max(LIMITS.examples).default(32),
        seed,
        sequenceTokens: z.number().int().min(2).max(LIMITS.contextTokens).default(2048),
        scoredTokens: count.max(LIMITS.contextTokens).default(1024),
        recallMinDistance: count.max(LIMITS.contextTokens).default(1024),
        distanceMaxCount: count.max(LIMITS.bigramCount).default(1000),
      })
      .strict()
      .refine((p) => p.scoredTokens < p.sequenceTokens, {
        message: 'scoredTokens must be below sequenceTokens (the first token has no prediction)',
        path: ['scoredTokens'],
      }),
  },
} as const;
export type TaskName = keyof typeof TASKS;
export type TaskKind = (typeof TASKS)[TaskName]['kind'];

const noParams = z.object({}).strict();
// optional without a default, so cells of specs that do not name it keep their keys
const jrtRnnPad = z.object({ padding: z.enum(['masked', 'released-v1']).optional() }).strict();

// `families`: the model families a strategy applies to (null: all). Cells pairing a strategy with
// another family are left out of the grid, and `twice plan` says so.
export const STRATEGIES = {
  default: { version: 1, params: noParams, families: null },
  // JRT-Prompt: the context read `repeats` times before the question (the paper uses 2)
  jrt_prompt: {
    version: 1,
    params: z.object({ repeats: z.number().int().min(2).max(LIMITS.repeats).default(2) }).strict(),
    families: null,
  },
  question_first: { version: 1, params: noParams, families: null },
  // the paper's real-task JRT layout for every task: the question (or "information about KEY .")
  // first, then the context `repeats` times, then the query; a task without a question (set
  // disjointness) gets JRT-Prompt's layout
  jrt_question_first: {
    version: 1,
    params: z.object({ repeats: z.number().int().min(2).max(LIMITS.repeats).default(2) }).strict(),
    families: null,
  },
  few_shot: { version: 1, params: z.object({ shots: count.max(LIMITS.shots).default(2) }).strict(), families: null },
  // JRT-RNN inference modes (paper Table 4): left-pad to the encoder length, read twice, iterate
  // `padding: 'released-v1'` reproduces the paper's code, whose left pads leak into prefix linear
  // attention (what its Table 2/4 numbers include); absent, pads reach no state
  jrt_rnn_left_pad: { version: 1, params: jrtRnnPad, families: ['jrt_rnn'] },
  jrt_rnn_read2x: { version: 1, params: jrtRnnPad, families: ['jrt_rnn'] },
  jrt_rnn_iterate: { version: 1, params: noParams, families: ['jrt_rnn'] },
} as const;
export type StrategyName = keyof typeof STRATEGIES;

export const SCORERS = {
  contains: { version: 1 },
  exact: { version: 1 },
  // measurement tasks: nothing to score
  none: { version: 1 },
} as const;
export type ScorerName = keyof typeof SCORERS;

/** The (length, batch) points of a prefill benchmark's params: lengths x batchSizes. */
export function benchmarkPoints(params: Record<string, unknown>): number {
  return (params.lengths as number[]).length * (params.batchSizes as number[]).length;
}

/**
 * How many examples a generated task holds: its numExamples (sequences for a perplexity task),
 * or for a prefill benchmark one per (point, round), `runs` rounds of every point, round r being
 * examples [r x points, (r + 1) x points). `rounds: false` is the count before rounds, one
 * example per point, which sweeps started before them still replay.
 */
export function generatedExampleCount(name: TaskName, params: Record<string, unknown>, opts: { rounds?: boolean } = {}): number {
  if (TASKS[name].kind === 'throughput') {
    return benchmarkPoints(params) * (opts.rounds === false ? 1 : (params.runs as number));
  }
  return params.numExamples as number;
}
