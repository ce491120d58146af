// Two sweeps side by side, example by example: which outcomes flipped in each cell they share,
// and whether the flips are more than noise. Cells are matched by their slot (model, task and its
// parameters, strategy and its parameters), not by key: last night's cell and tonight's have
// different keys when a model's weights moved, and that is exactly what a comparison is for.
// The counting happens in PostgreSQL on each cell's outcome bitmaps (cell_scores, kept by
// triggers), so pairing two cells costs a few popcounts, not a join of their examples, and
// comparing sweeps of hundreds of thousands of examples moves only a few numbers per cell. What
// counts as correct is the database's score_is_correct(), the one definition every query uses.
import { type Db } from '../../activities/db';
import { Prisma } from '../../generated/prisma/client';
import { TASKS, type TaskName } from '../../workflows/catalog';
import { holmAdjust, mcnemarExact, pairedDifferenceInterval, type Interval, type PairedCounts } from '../../workflows/stats';
import { taskLabels, UnknownSweepError } from './report';

export interface CellComparison {
  model: string;
  task: string;
  taskLabel: string;
  strategy: string;
  baseKey: string;
  otherKey: string;
  /** both sweeps used the very same cell (a reused result): nothing can have flipped */
  sameKey: boolean;
  /** examples present in both cells */
  n: number;
  /** A = the base sweep, B = the other */
  counts: PairedCounts;
  baseAccuracy: number | null;
  otherAccuracy: number | null;
  /** other - base, paired over the shared examples */
  difference: Interval;
  /** exact McNemar test of the flips */
  pValue: number;
  /** Holm-adjusted over every cell of this comparison */
  adjustedP: number;
}

export interface SweepComparison {
  baseSweepId: string;
  otherSweepId: string;
  /** most significant first */
  cells: CellComparison[];
  /** slots only one of the sweeps has, as "model · task · strategy" */
  onlyInBase: string[];
  onlyInOther: string[];
}

interface SlotRow {
  base_key: string | null;
  other_key: string | null;
  model_name: string;
  task_name: string;
  task_params: Record<string, unknown>;
  strategy_name: string;
  both: number | null;
  only_a: number | null;
  only_b: number | null;
  neither: number | null;
}

/** The two sweeps' cells paired by slot, with their paired outcome counts from the bitmaps. */
export const slotsQuery = (baseSweepId: string, otherSweepId: string) => Prisma.sql`
    WITH a AS (
      SELECT c.key, c.model_name, c.task_name, c.task_params, c.strategy_name, c.strategy_params
        FROM sweep_cells sc JOIN cells c ON c.key = sc.cell_key WHERE sc.sweep_id = ${baseSweepId}),
    b AS (
      SELECT c.key, c.model_name, c.task_name, c.task_params, c.strategy_name, c.strategy_params
        FROM sweep_cells sc JOIN cells c ON c.key = sc.cell_key WHERE sc.sweep_id = ${otherSweepId}),
    slots AS (
      SELECT a.key AS base_key, b.key AS other_key,
             coalesce(a.model_name, b.model_name) AS model_name, coalesce(a.task_name, b.task_name) AS task_name,
             coalesce(a.task_params, b.task_params) AS task_params, coalesce(a.strategy_name, b.strategy_name) AS strategy_name
        FROM a FULL JOIN b
          ON a.model_name = b.model_name AND a.task_name = b.task_name AND a.task_params = b.task_params
         AND a.strategy_name = b.strategy_name AND a.strategy_params = b.strategy_params)
    SELECT s.*, f.both_right AS both, f.only_a, f.only_b, f.neither
      FROM slots s
      LEFT JOIN cell_scores xa ON xa.cell_key = s.base_key
      LEFT JOIN cell_scores xb ON xb.cell_key = s.other_key
      LEFT JOIN LATERAL paired_outcomes(xa.seen, xa.hits, xb.seen, xb.hits) f ON true
     ORDER BY s.model_name, s.task_name, s.strategy_name`;

export async function compareSweeps(db: Db, baseSweepId: string, otherSweepId: string): Promise<SweepComparison> {
  const [found, rows] = await Promise.all([
    db.sweep.findMany({ where: { id: { in: [baseSweepId, otherSweepId] } }, select: { id: true } }),
    db.$queryRaw<SlotRow[]>(slotsQuery(baseSweepId, otherSweepId)),
  ]);
  for (const id of [baseSweepId, otherSweepId]) {
    if (!found.some((s) => s.id === id)) throw new UnknownSweepError(id);
  }
  // measurement tasks (prefill benchmarks) have no outcomes to compare
  const scored = rows.filter((r) => TASKS[r.task_name as TaskName]?.kind === 'recall');
  const labels = taskLabels(scored.map((r) => ({ name: r.task_name, params: r.task_params })));
  const slotName = (r: SlotRow, i: number) => `${r.model_name} · ${labels[i]} · ${r.strategy_name}`;
  const matched = scored.flatMap((r, i) => (r.base_key && r.other_key ? [{ r, label: labels[i]! }] : []));
  const cells = matched.map(({ r, label }) => {
    const counts = { both: r.both ?? 0, onlyA: r.only_a ?? 0, onlyB: r.only_b ?? 0, neither: r.neither ?? 0 };
    const n = counts.both + counts.onlyA + counts.onlyB + counts.neither;
    return {
      model: r.model_name,
      task: r.task_name,
      taskLabel: label,
      strategy: r.strategy_name,
      baseKey: r.base_key!,
      otherKey: r.other_key!,
      sameKey: r.base_key === r.other_key,
      n,
      counts,
      baseAccuracy: n ? (counts.both + counts.onlyA) / n : null,
      otherAccuracy: n ? (counts.both + counts.onlyB) / n : null,
      difference: pairedDifferenceInterval(counts),
      pValue: mcnemarExact(counts.onlyA, counts.onlyB),
      adjustedP: 1,
    };
  });
  holmAdjust(cells.map((c) => c.pValue)).forEach((p, i) => (cells[i]!.adjustedP = p));
  cells.sort((x, y) => x.adjustedP - y.adjustedP || x.pValue - y.pValue || Math.abs(y.difference.estimate) - Math.abs(x.difference.estimate));
  return {
    baseSweepId,
    otherSweepId,
    cells,
    onlyInBase: scored.flatMap((r, i) => (r.base_key && !r.other_key ? [slotName(r, i)] : [])),
    onlyInOther: scored.flatMap((r, i) => (!r.base_key && r.other_key ? [slotName(r, i)] : [])),
  };
}

/** Cells whose accuracy fell by more than noise: Holm-adjusted p below `alpha`. */
export function regressions(comparison: SweepComparison, alpha: number): CellComparison[] {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  return comparison.cells.filter((c) => c.adjustedP < alpha && c.difference.estimate < 0);
}

export interface FlippedExample {
  exampleId: number;
  /** right in the base sweep, wrong in the other */
  toWrong: boolean;
  basePrediction: string;
  otherPrediction: string;
  gold: unknown;
}

interface FlipRow {
  total: number;
  example_id: number | null;
  to_wrong: boolean;
  base_prediction: string;
  other_prediction: string;
  gold: unknown;
}

/**
 * The flipped examples' ids come from the two cells' bitmaps (examples both have, whose outcomes
 * differ), so a page reads only its own rows by primary key, whatever its offset. One row with a
 * null example_id carries the total when the page is past the end.
 */
export const flipsQuery = (baseKey: string, otherKey: string, page: { limit: number; offset: number }) => Prisma.sql`
    WITH p AS (
      SELECT bits_pad(a.seen, l.n) & bits_pad(b.seen, l.n) & (bits_pad(a.hits, l.n) # bits_pad(b.hits, l.n)) AS flips
        FROM cell_scores a CROSS JOIN cell_scores b
        CROSS JOIN LATERAL (SELECT greatest(length(a.seen), length(b.seen)) AS n) l
       WHERE a.cell_key = ${baseKey} AND b.cell_key = ${otherKey})
    SELECT bit_count(p.flips)::int AS total, r.*
      FROM p LEFT JOIN LATERAL (
        SELECT ea.example_id, score_is_correct(ea.score) AS to_wrong, ea.prediction AS base_prediction,
               eb.prediction AS other_prediction, ea.gold
          FROM bit_positions(p.flips, ${page.offset}, ${page.limit}) id
          JOIN example_results ea ON ea.cell_key = ${baseKey} AND ea.example_id = id
          JOIN example_results eb ON eb.cell_key = ${otherKey} AND eb.example_id = id) r ON true
     ORDER BY r.example_id`;

/** The examples whose outcome differs between two cells, by example id, a page at a time. */
export async function flippedExamples(
  db: Db,
  baseKey: string,
  otherKey: string,
  page: { limit: number; offset: number } = { limit: 100, offset: 0 },
): Promise<{ total: number; examples: FlippedExample[] }> {
  if (!Number.isInteger(page.limit) || page.limit < 1 || page.limit > 1000) {
    throw new RangeError(`limit must be an integer in [1, 1000], got ${page.limit}`);
  }
  if (!Number.isInteger(page.offset) || page.offset < 0) throw new RangeError(`offset must be a non-negative integer, got ${page.offset}`);
  const rows = await db.$queryRaw<FlipRow[]>(flipsQuery(baseKey, otherKey, page));
  const examples = rows.filter((r): r is FlipRow & { example_id: number } => r.example_id !== null);
  return {
    total: rows[0]?.total ?? 0,
    examples: examples.map((r) => ({
      exampleId: r.example_id,
      toWrong: r.to_wrong,
      basePrediction: r.base_prediction,
      otherPrediction: r.other_prediction,
      gold: r.gold,
    })),
  };
}
