// The paper's own numbers beside ours: when a sweep's cells are cells of the paper's grids
// (specs/paper/*.yaml), the report prints each accuracy with the paper's (Arora et al. 2024,
// Tables 1-4, committed in specs/paper/paper-numbers.json) and the difference in points.
// A cell matches a paper column by its task parameters: Table 1 cut documents to 950 tokens (NQ
// from the 1024 set); Tables 2-4 used context lengths 512 / 1024 / 2048 minus a 50-token answer
// budget (462 / 974 / 1998 tokens), NQ pre-cut sets, and "Full" SQuAD/TriviaQA/DROP at 1998.
// JRT-RNN's paper numbers include the released code's padding, so only cells run with
// `padding: released-v1` are compared (Iterate has no padding). Tested in test/unit/paper-numbers.test.ts.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { cachedFromFiles } from './file-cache';
import type { CellResult, PaperComparison } from './report/types';

const Accuracy = z.number().min(0).max(100);
const PaperNumbers = z
  .object({
    $comment: z.string(),
    table1: z.record(z.string(), z.record(z.string(), z.object({ default: Accuracy, jrt_prompt: Accuracy }).strict())),
    table2: z.record(z.string(), z.record(z.string(), Accuracy)),
    table3: z.record(z.string(), z.record(z.string(), Accuracy)),
    table4: z.record(z.string(), z.record(z.string(), z.record(z.string(), Accuracy))),
    table5: z.record(z.string(), z.unknown()),
  })
  .strict();
export type PaperNumbers = z.infer<typeof PaperNumbers>;

const PAPER_FILE = new URL('../../specs/paper/paper-numbers.json', import.meta.url);

export function loadPaperNumbers(file: URL | string = PAPER_FILE): PaperNumbers {
  return PaperNumbers.parse(JSON.parse(readFileSync(file, 'utf8')));
}

/** The committed numbers, parsed once per change of the file. */
export const paperNumbers = cachedFromFiles(
  () => [PAPER_FILE],
  () => loadPaperNumbers(),
);

/** What of a report cell decides which paper number it is comparable to. */
export type ComparableCell = Pick<CellResult, 'model' | 'family' | 'task' | 'taskLabel' | 'strategy' | 'status' | 'accuracy' | 'taskParams' | 'strategyParams'>;

const ANSWER_BUDGET = 50;
const TABLE1_CONTEXT = 950;
const FULL_CONTEXT = 2048 - ANSWER_BUDGET;

function column(task: string, params: Record<string, unknown>): string | null {
  const context = Number(params.contextTokens ?? TABLE1_CONTEXT);
  if (task === 'nq') return `nq-${String(params.variant ?? 1024)}`;
  if (task === 'fda' || task === 'swde') return `${task}-${context + ANSWER_BUDGET}`;
  if (task === 'squad' || task === 'triviaqa' || task === 'drop') return context === FULL_CONTEXT ? task : null;
  return null;
}

/** The paper's number for one cell and the table it comes from, or null when it has none. */
export function paperNumberFor(cell: ComparableCell, paper: PaperNumbers): { value: number; source: string } | null {
  const params = cell.taskParams ?? {};
  const sparams = cell.strategyParams ?? {};
  const context = Number(params.contextTokens ?? TABLE1_CONTEXT);
  const found = (value: number | undefined, source: string) => (value === undefined ? null : { value, source });
  if (context === TABLE1_CONTEXT && (cell.task !== 'nq' || Number(params.variant ?? 1024) === 1024)) {
    const row = paper.table1[cell.model]?.[cell.task];
    if (!row) return null;
    if (cell.strategy === 'default') return found(row.default, 'Table 1');
    if (cell.strategy === 'jrt_prompt' && Number(sparams.repeats ?? 2) === 2) return found(row.jrt_prompt, 'Table 1');
    return null;
  }
  const col = column(cell.task, params);
  if (col === null) return null;
  if (cell.family === 'jrt_rnn') {
    const released = sparams.padding === 'released-v1';
    if (cell.strategy === 'jrt_rnn_iterate' || released) {
      const t4 = paper.table4[cell.model]?.[cell.strategy]?.[col];
      if (t4 !== undefined) return found(t4, 'Table 4');
    }
    if (cell.strategy !== 'jrt_rnn_left_pad' || !released || col.endsWith('-512')) return null;
  } else if (cell.strategy !== 'default') {
    return null;
  }
  return found(paper.table2[cell.model]?.[col], 'Table 2') ?? found(paper.table3[cell.model]?.[col], 'Table 3');
}

export function comparePaper(cells: ComparableCell[], paper: PaperNumbers = loadPaperNumbers()): PaperComparison[] {
  const rows: PaperComparison[] = [];
  for (const cell of cells) {
    if (cell.status !== 'done' || cell.accuracy === null) continue;
    const match = paperNumberFor(cell, paper);
    if (!match) continue;
    const ours = 100 * cell.accuracy;
    rows.push({
      model: cell.model,
      task: cell.taskLabel,
      strategy: cell.strategy,
      ours,
      paper: match.value,
      difference: ours - match.value,
      source: match.source,
    });
  }
  return rows;
}

export const PAPER_HEAD = ['model', 'task', 'strategy', 'ours %', 'paper %', 'difference', 'source'];

export function paperRows(rows: PaperComparison[]): string[][] {
  return rows.map((r) => [
    r.model,
    r.task,
    r.strategy,
    r.ours.toFixed(1),
    r.paper.toFixed(1),
    `${r.difference >= 0 ? '+' : ''}${r.difference.toFixed(1)}`,
    r.source,
  ]);
}
