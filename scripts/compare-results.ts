// Do two runs of a sweep agree cell for cell? For a change that must not move results (a
// refactor): run the same spec on the code before and after, each on its own stack so nothing is
// reused across the two, then
//   npx tsx scripts/compare-results.ts before/report.json after/report.json
// (the report.json that `npm start` writes to reports/default/, or `twice report --out`).
// The cells are matched by key, so the key sets must be equal too: a changed key means a changed
// model revision, task data, strategy or generation setting. Per key the outcome must be equal:
// status, examples, correct, accuracy, per-slice perplexity, state size, error. Timings are left
// out; they belong to the run, not to the result. Exit 0 when identical, 1 listing each
// difference, 2 when a file cannot be read as a report.
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';

// Only the fields compared are named; the rest of a report (charts' inputs, timings, execution
// summary) may be anything.
// what names a cell, in both kinds, and its status
const cellIdentity = {
  key: z.string().min(1),
  model: z.string(),
  taskLabel: z.string(),
  strategy: z.string(),
  status: z.string(),
};
const RecallCell = z
  .object({
    ...cellIdentity,
    examples: z.number(),
    correct: z.number(),
    accuracy: z.number().nullable(),
    perplexity: z.record(z.string(), z.number()),
    stateBytes: z.number().nullable(),
    error: z.string().nullable(),
  })
  .loose();
const PerplexityCell = z
  .object({
    ...cellIdentity,
    sequences: z.number(),
    arHit: z.number().nullable(),
    arHitTokens: z.number(),
    other: z.number().nullable(),
    otherTokens: z.number(),
    panels: z.array(z.unknown()),
    error: z.string().nullable(),
  })
  .loose();
const Report = z.object({ sweepId: z.string(), cells: z.array(RecallCell), perplexity: z.array(PerplexityCell) }).loose();
type Report = z.infer<typeof Report>;

const OUTCOME = {
  recall: ['status', 'examples', 'correct', 'accuracy', 'perplexity', 'stateBytes', 'error'],
  perplexity: ['status', 'sequences', 'arHit', 'arHitTokens', 'other', 'otherTokens', 'panels', 'error'],
} as const;

export interface ResultsComparison {
  cells: number;
  identical: number;
  /** one line per difference: a key in one run only, or a field whose value differs */
  differences: string[];
}

function outcomes(report: Report): Map<string, { kind: keyof typeof OUTCOME; cell: Record<string, unknown> }> {
  const byKey = new Map<string, { kind: keyof typeof OUTCOME; cell: Record<string, unknown> }>();
  for (const cell of report.cells) byKey.set(cell.key, { kind: 'recall', cell });
  for (const cell of report.perplexity) byKey.set(cell.key, { kind: 'perplexity', cell });
  return byKey;
}

const slot = (cell: Record<string, unknown>) => `${String(cell.model)} x ${String(cell.taskLabel)} x ${String(cell.strategy)}`;

function parseReport(raw: unknown, name: string): Report {
  const parsed = Report.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new Error(`${name} is not a sweep report: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
}

/** `before` and `after` are parsed report.json documents; `names` label them in errors. */
export function compareReports(before: unknown, after: unknown, names: [string, string] = ['before', 'after']): ResultsComparison {
  const a = outcomes(parseReport(before, names[0]));
  const b = outcomes(parseReport(after, names[1]));
  const differences: string[] = [];
  let identical = 0;
  for (const [key, { cell }] of a) if (!b.has(key)) differences.push(`only before: ${key} (${slot(cell)})`);
  for (const [key, { cell }] of b) if (!a.has(key)) differences.push(`only after: ${key} (${slot(cell)})`);
  for (const [key, { kind, cell }] of a) {
    const other = b.get(key)?.cell;
    if (!other) continue;
    const changed = OUTCOME[kind].filter((field) => !isDeepStrictEqual(cell[field], other[field]));
    for (const field of changed) {
      differences.push(`${key} (${slot(cell)}): ${field} ${JSON.stringify(cell[field])} -> ${JSON.stringify(other[field])}`);
    }
    if (changed.length === 0) identical += 1;
  }
  return { cells: new Set([...a.keys(), ...b.keys()]).size, identical, differences };
}

function readReport(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (error) {
    console.error(`${path}: ${(error as Error).message}`);
    process.exit(2);
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const [beforePath, afterPath] = process.argv.slice(2);
  if (!beforePath || !afterPath) {
    console.error('usage: tsx scripts/compare-results.ts <before report.json> <after report.json>');
    process.exit(2);
  }
  const before = readReport(beforePath);
  const after = readReport(afterPath);
  let result: ResultsComparison;
  try {
    result = compareReports(before, after, [beforePath, afterPath]);
  } catch (error) {
    console.error((error as Error).message);
    process.exit(2);
  }
  for (const line of result.differences) console.log(line);
  console.log(`${result.cells} cells, ${result.identical} identical, ${result.differences.length} differences`);
  process.exit(result.differences.length === 0 ? 0 : 1);
}
