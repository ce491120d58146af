// What a sweep spec may name: tasks, prompt strategies and scorers, each with its version and a
// strict schema for its parameters. The Python worker implements the same names and versions
// (inference/twice_inference/tasks/registry.py, strategies.py); npm run generate exports this
// catalog to task-catalog.json and inference/tests/test_task_catalog.py checks they agree.
// Bumping a version here changes the keys of every cell that uses it, so those cells re-run.
import { z } from 'zod';

const count = z.number().int().min(1);
const seed = z.number().int().min(0).default(0);

const dataTask = {
  // a local directory holding the dataset (validation.jsonl or *.parquet); default: TWICE_DATA_DIR
  dataDir: z.string().min(1).optional(),
  limit: count.optional(),
  // the paper cuts each document to 950 tokens of the evaluated model's tokenizer
  contextTokens: count.default(950),
};

export const TASKS = {
  mqar: {
    version: 1,
    synthetic: true,
    // one-word answers: a substring test would count "v9" as found in "v90"
    scorer: 'exact',
    params: z
      .object({ numExamples: count.default(200), seed, numKvPairs: count.default(16) })
      .strict(),
  },
  synthetic_doc_qa: {
    version: 1,
    synthetic: true,
    scorer: 'exact',
    params: z
      .object({ numExamples: count.default(200), seed, numFacts: count.default(8) })
      .strict(),
  },
  set_disjointness: {
    version: 1,
    synthetic: true,
    scorer: 'exact',
    params: z
      .object({
        numExamples: count.default(200),
        seed,
        sizes: z
          .array(z.tuple([count, count]))
          .min(1)
          .default([
            [4, 16],
            [16, 4],
          ]),
      })
      .strict(),
  },
  // the paper's metric: any gold answer as a case-insensitive substring of the generation
  fda: { version: 1, synthetic: false, scorer: 'contains', params: z.object(dataTask).strict() },
  swde: { version: 1, synthetic: false, scorer: 'contains', params: z.object(dataTask).strict() },
  squad: { version: 1, synthetic: false, scorer: 'contains', params: z.object(dataTask).strict() },
  triviaqa: { version: 1, synthetic: false, scorer: 'contains', params: z.object(dataTask).strict() },
  drop: { version: 1, synthetic: false, scorer: 'contains', params: z.object(dataTask).strict() },
  nq: {
    version: 1,
    synthetic: false,
    scorer: 'contains',
    params: z
      .object({
        ...dataTask,
        variant: z.union([z.literal(512), z.literal(1024), z.literal(2048)]).default(1024),
      })
      .strict(),
  },
} as const;
export type TaskName = keyof typeof TASKS;

const noParams = z.object({}).strict();

// `families`: the model families a strategy applies to (null: all). Cells pairing a strategy with
// another family are left out of the grid, and `twice plan` says so.
export const STRATEGIES = {
  default: { version: 1, params: noParams, families: null },
  // JRT-Prompt: the context read `repeats` times before the question (the paper uses 2)
  jrt_prompt: {
    version: 1,
    params: z.object({ repeats: z.number().int().min(2).default(2) }).strict(),
    families: null,
  },
  question_first: { version: 1, params: noParams, families: null },
  few_shot: { version: 1, params: z.object({ shots: count.default(2) }).strict(), families: null },
  // JRT-RNN inference modes (paper Table 4): left-pad to the encoder length, read twice, iterate
  jrt_rnn_left_pad: { version: 1, params: noParams, families: ['jrt_rnn'] },
  jrt_rnn_read2x: { version: 1, params: noParams, families: ['jrt_rnn'] },
  jrt_rnn_iterate: { version: 1, params: noParams, families: ['jrt_rnn'] },
} as const;
export type StrategyName = keyof typeof STRATEGIES;

export const SCORERS = {
  contains: { version: 1 },
  exact: { version: 1 },
} as const;
export type ScorerName = keyof typeof SCORERS;
