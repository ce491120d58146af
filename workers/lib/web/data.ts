// What the dashboard reads from the results database, besides the sweep report: the sweeps list
// with progress, per-cell slices, one cell's fields and its examples a page at a time.
import { Prisma } from '../../../generated/prisma/client';
import { type Db } from '../db-client';

export interface SweepSummary {
  id: string;
  name: string;
  status: string;
  /** set when the sweep ended failed and another sweep completed its cells */
  completedBy: string | null;
  createdAt: string;
  finishedAt: string | null;
  cells: { total: number; done: number; failed: number; reused: number };
  examples: { total: number; done: number };
  /** seconds to go at the rate examples have landed so far; null when it cannot be told */
  etaSeconds: number | null;
  failures: Array<{ cellKey: string; what: string; error: string }>;
}

export async function listSweeps(db: Db, limit = 50): Promise<SweepSummary[]> {
  const rows = await db.$queryRaw<
    Array<{
      id: string;
      name: string;
      status: string;
      completed_by: string | null;
      created_at: Date;
      finished_at: Date | null;
      cells: number;
      done: number;
      failed: number;
      reused: number;
      examples_total: number;
      examples_done: number;
    }>
  >`
    SELECT s.id, s.name, s.status, s.completed_by, s.created_at, s.finished_at,
           count(c.key)::int AS cells,
           (count(*) FILTER (WHERE c.status = 'done'))::int AS done,
           (count(*) FILTER (WHERE c.status = 'failed'))::int AS failed,
           (count(*) FILTER (WHERE sc.reused))::int AS reused,
           coalesce(sum(c.num_examples), 0)::int AS examples_total,
           coalesce(sum(t.examples_done), 0)::int AS examples_done
      FROM (SELECT * FROM sweeps ORDER BY created_at DESC LIMIT ${limit}) s
      LEFT JOIN sweep_cells sc ON sc.sweep_id = s.id
      LEFT JOIN cells c ON c.key = sc.cell_key
      LEFT JOIN cell_shard_totals t ON t.cell_key = c.key
     GROUP BY s.id, s.name, s.status, s.completed_by, s.created_at, s.finished_at
     ORDER BY s.created_at DESC`;
  const failures = await db.$queryRaw<Array<{ sweep_id: string; key: string; what: string; error: string | null }>>`
    SELECT sc.sweep_id, c.key, c.model_name || ' / ' || c.task_name || ' / ' || c.strategy_name AS what, c.error
      FROM sweep_cells sc JOIN cells c ON c.key = sc.cell_key
     WHERE c.status = 'failed' AND sc.sweep_id = ANY(${rows.map((r) => r.id)})
     ORDER BY what`;
  const now = Date.now();
  return rows.map((r) => {
    const elapsed = (now - r.created_at.getTime()) / 1000;
    const left = r.examples_total - r.examples_done;
    return {
      id: r.id,
      name: r.name,
      status: r.status,
      completedBy: r.completed_by,
      createdAt: r.created_at.toISOString(),
      finishedAt: r.finished_at?.toISOString() ?? null,
      cells: { total: r.cells, done: r.done, failed: r.failed, reused: r.reused },
      examples: { total: r.examples_total, done: r.examples_done },
      etaSeconds: r.status === 'running' && r.examples_done > 0 && left > 0 ? Math.round((left * elapsed) / r.examples_done) : null,
      failures: failures.filter((f) => f.sweep_id === r.id).map((f) => ({ cellKey: f.key, what: f.what, error: f.error ?? 'unknown error' })),
    };
  });
}

/** Perplexity per slice for every cell of a sweep: AR hits vs Other and whatever bins were kept. */
export async function slicePerplexities(db: Db, sweepId: string) {
  const rows = await db.$queryRaw<Array<{ cell_key: string; slice: string; nll: number; tokens: bigint }>>`
    SELECT s.cell_key, s.slice, s.nll_sum AS nll, s.token_count AS tokens
      FROM cell_slice_totals s JOIN sweep_cells sc ON sc.cell_key = s.cell_key AND sc.sweep_id = ${sweepId}
     ORDER BY s.cell_key, s.slice`;
  const out = new Map<string, Array<{ slice: string; perplexity: number; tokens: number }>>();
  for (const r of rows) {
    const tokens = Number(r.tokens);
    if (tokens === 0) continue;
    out.set(r.cell_key, [...(out.get(r.cell_key) ?? []), { slice: r.slice, perplexity: Math.exp(r.nll / tokens), tokens }]);
  }
  return out;
}

export async function loadCell(db: Db, key: string) {
  return db.cell.findUnique({
    where: { key },
    include: { sweeps: { select: { sweepId: true, reused: true } } },
  });
}

export interface ExamplePage {
  total: number;
  offset: number;
  limit: number;
  examples: Array<{
    exampleId: number;
    shardIndex: number;
    promptDigest: string;
    /** null when recorded before the prompt column existed */
    prompt: string | null;
    promptTokens: number;
    prediction: string;
    gold: unknown;
    score: number;
    /** by the database's score_is_correct(), the one definition of correct */
    correct: boolean;
  }>;
}

type PageOptions = { wrongOnly: boolean; offset: number; limit: number };

interface ExampleRow {
  total: number;
  example_id: number | null;
  shard_index: number;
  prompt_digest: string;
  prompt: string | null;
  prompt_tokens: number;
  prediction: string;
  gold: unknown;
  score: number;
  correct: boolean;
}

/**
 * One page of a cell's examples by id (`wrongOnly`: the incorrect ones) and how many there are.
 * The page's ids are read off the cell's bitmaps in cell_scores, so any page, however deep, reads
 * only its own rows by primary key. One row with a null example_id carries the total when the page
 * is past the end.
 */
export const examplesQuery = (key: string, opts: PageOptions) => Prisma.sql`
    WITH m AS (
      SELECT ${opts.wrongOnly ? Prisma.sql`bits_minus(seen, hits)` : Prisma.sql`seen`} AS bits FROM cell_scores WHERE cell_key = ${key})
    SELECT bit_count(m.bits)::int AS total, r.*
      FROM m LEFT JOIN LATERAL (
        SELECT e.example_id, e.shard_index, e.prompt_digest, e.prompt, e.prompt_tokens, e.prediction, e.gold, e.score,
               score_is_correct(e.score) AS correct
          FROM bit_positions(m.bits, ${opts.offset}, ${opts.limit}) id
          JOIN example_results e ON e.cell_key = ${key} AND e.example_id = id) r ON true
     ORDER BY r.example_id`;

export async function cellExamples(db: Db, key: string, opts: PageOptions): Promise<ExamplePage> {
  const rows = await db.$queryRaw<ExampleRow[]>(examplesQuery(key, opts));
  return {
    total: rows[0]?.total ?? 0,
    offset: opts.offset,
    limit: opts.limit,
    examples: rows
      .filter((r): r is ExampleRow & { example_id: number } => r.example_id !== null)
      .map((r) => ({
        exampleId: r.example_id,
        shardIndex: r.shard_index,
        promptDigest: r.prompt_digest,
        prompt: r.prompt,
        promptTokens: r.prompt_tokens,
        prediction: r.prediction,
        gold: r.gold,
        score: r.score,
        correct: r.correct,
      })),
  };
}
