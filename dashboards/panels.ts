// The SQL behind every panel of the twice overview dashboard, one exported constant per query, so
// that dashboards/build.ts places them and test/integration/dashboards.test.ts runs each one
// against a real migrated Postgres with known rows. Definitions follow workers/lib/report/ and workflows/pareto.ts:
// accuracy is the mean example score; a (model, strategy) point averages its cells' accuracies
// over tasks and counts prompts prefilled per second over all of its shards, or, on the
// benchmark axis, prompt tokens per second over its prefill_throughput points.
//
// Grafana fills in `$sweep` (the dashboard variable, inside quotes: single-value variables are
// inserted raw with quotes doubled), `$__timeFilter(col)` and `$__timeGroupAlias(col, $__interval)`.

/** The `$sweep` variable: newest first, shown by name and start time, valued by sweep id. */
export const SWEEP_VARIABLE_SQL = `
SELECT s.id AS __value,
       s.name || ' · ' || to_char(s.created_at, 'YYYY-MM-DD HH24:MI') || ' · ' || s.id AS __text
  FROM sweeps s
 ORDER BY s.created_at DESC
 LIMIT 200`.trim();

export const LATEST_SWEEPS_SQL = `
SELECT s.id AS sweep,
       s.name,
       s.status,
       s.created_at AS started,
       s.finished_at AS finished,
       count(sc.cell_key)::int AS cells,
       (count(*) FILTER (WHERE c.status = 'done'))::int AS cells_done,
       (count(*) FILTER (WHERE c.status = 'failed'))::int AS cells_failed,
       (count(*) FILTER (WHERE sc.reused))::int AS cells_reused,
       s.git_sha
  FROM sweeps s
  LEFT JOIN sweep_cells sc ON sc.sweep_id = s.id
  LEFT JOIN cells c ON c.key = sc.cell_key
 WHERE $__timeFilter(s.created_at)
 GROUP BY s.id
 ORDER BY s.created_at DESC
 LIMIT 50`.trim();

// Per cell of the selected sweep: examples scored and mean score. Cells without results yet are
// left out rather than shown as zero.
const CELL_ACCURACY_CTE = `
cell_accuracy AS (
  SELECT c.key, c.model_name, c.task_name, c.strategy_name,
         count(*)::int AS examples,
         avg(e.score) AS accuracy
    FROM sweep_cells sc
    JOIN cells c ON c.key = sc.cell_key
    JOIN example_results e ON e.cell_key = c.key
   WHERE sc.sweep_id = '$sweep'
   GROUP BY c.key, c.model_name, c.task_name, c.strategy_name
)`.trim();

export const ACCURACY_SQL = `
WITH ${CELL_ACCURACY_CTE}
SELECT model_name AS model,
       task_name AS task,
       strategy_name AS strategy,
       examples,
       accuracy,
       -- the 95% Wilson interval, as the sweep report's wilsonInterval (workflows/stats.ts)
       -- computes it; Grafana cannot call TypeScript, the dashboards test checks they agree
       greatest(0, (accuracy + 1.920729410347062 / examples
                    - 1.959963984540054 * sqrt(accuracy * (1 - accuracy) / examples + 0.960364705173531 / (examples * examples)))
                   / (1 + 3.841458820694124 / examples)) AS ci95_lo,
       least(1, (accuracy + 1.920729410347062 / examples
                 + 1.959963984540054 * sqrt(accuracy * (1 - accuracy) / examples + 0.960364705173531 / (examples * examples)))
                / (1 + 3.841458820694124 / examples)) AS ci95_hi,
       left(key, 12) AS cell
  FROM cell_accuracy
 ORDER BY model, task, strategy, cell`.trim();

// Examples are pooled per (model, task, strategy), so a sweep holding two variants of a strategy
// (say JRT-Prompt with 2 and 3 repeats) reports their combined accuracy.
export const JRT_GAIN_SQL = `
WITH ${CELL_ACCURACY_CTE},
by_strategy AS (
  SELECT model_name, task_name, strategy_name,
         sum(accuracy * examples) / sum(examples) AS accuracy
    FROM cell_accuracy
   WHERE strategy_name IN ('default', 'jrt_prompt')
   GROUP BY model_name, task_name, strategy_name
)
SELECT d.model_name AS model,
       d.task_name AS task,
       d.accuracy AS default_accuracy,
       j.accuracy AS jrt_prompt_accuracy,
       j.accuracy - d.accuracy AS jrt_gain
  FROM by_strategy d
  JOIN by_strategy j ON j.model_name = d.model_name AND j.task_name = d.task_name
 WHERE d.strategy_name = 'default' AND j.strategy_name = 'jrt_prompt'
 ORDER BY model, task`.trim();

// One point per (model, strategy) of the selected sweep that has both results and prefill time.
const POINTS_CTE = `
${CELL_ACCURACY_CTE},
cell_prefill AS (
  SELECT cell_key, sum(prefill_seconds) AS seconds
    FROM shard_records
   GROUP BY cell_key
),
points AS (
  SELECT a.model_name || ' · ' || a.strategy_name AS point,
         sum(a.examples) / sum(p.seconds) AS prompts_per_second,
         avg(a.accuracy) AS accuracy
    FROM cell_accuracy a
    JOIN cell_prefill p ON p.cell_key = a.key
   WHERE p.seconds > 0
   GROUP BY a.model_name, a.strategy_name
)`.trim();

// The selected sweep's points on the prefill benchmark's axis: prompt tokens per second over all
// benchmark points of the (model, strategy), for the points that also have recall results. The
// sweep report uses this axis whenever every point has benchmark rows (workflows/pareto.ts).
// One row per benchmark point of the selected sweep's cells and per source (the model, or the
// attention baseline beside it): a point may be timed over several rows (one per round, each in
// its own shard), so its median is over every run of every row, and its runs are listed in the
// order they ran. A point held in one row (how every point was recorded before rounds) keeps its
// stored median as it is; rows recorded before per-run seconds were kept count their median once,
// and the point then has no run list.
const BENCHMARK_POINT_CTE = `
point_rows AS (
  SELECT m.*
    FROM sweep_cells sc
    JOIN throughput_measurements m ON m.cell_key = sc.cell_key
   WHERE sc.sweep_id = '$sweep'
     AND m.source IN ('benchmark', 'benchmark-baseline')
),
bench_points AS (
  SELECT r.cell_key, r.source, r.batch_size, r.seq_len, r.processed_len, r.implementation,
         min(r.gpu_name) AS gpu_name,
         count(*) AS row_count,
         min(r.seconds) AS row_seconds,
         min(r.tokens_per_second) AS row_tokens_per_second,
         min(r.min_seconds) AS min_seconds,
         bool_and(r.run_seconds IS NOT NULL) AS every_run_kept,
         array_agg(r.id ORDER BY r.shard_index, r.example_id) AS ids
    FROM point_rows r
   GROUP BY r.cell_key, r.source, r.batch_size, r.seq_len, r.processed_len, r.implementation
),
bench_medians AS (
  SELECT p.*,
         CASE WHEN p.row_count = 1 THEN p.row_seconds
              ELSE (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x.s)
                      FROM point_rows t, unnest(coalesce(t.run_seconds, ARRAY[t.seconds])) AS x(s)
                     WHERE t.id = ANY (p.ids)) END AS seconds,
         CASE WHEN p.every_run_kept
              THEN (SELECT array_agg(x.s ORDER BY array_position(p.ids, t.id), x.i)
                      FROM point_rows t, unnest(t.run_seconds) WITH ORDINALITY AS x(s, i)
                     WHERE t.id = ANY (p.ids)) END AS run_seconds
    FROM bench_points p
)`.trim();

// The selected sweep's points on the prefill benchmark's axis: prompt tokens per second over all
// benchmark points of the (model, strategy), for the points that also have recall results. The
// sweep report uses this axis whenever every point has benchmark rows (workflows/pareto.ts).
const BENCHMARK_POINTS_CTE = `
${CELL_ACCURACY_CTE},
${BENCHMARK_POINT_CTE},
bench AS (
  SELECT c.model_name, c.strategy_name,
         sum(m.batch_size * m.seq_len)::float / sum(m.seconds) AS tokens_per_second
    FROM bench_medians m
    JOIN cells c ON c.key = m.cell_key
   WHERE m.source = 'benchmark'
   GROUP BY c.model_name, c.strategy_name
),
points AS (
  SELECT a.model_name || ' · ' || a.strategy_name AS point,
         b.tokens_per_second,
         avg(a.accuracy) AS accuracy
    FROM cell_accuracy a
    JOIN bench b ON b.model_name = a.model_name AND b.strategy_name = a.strategy_name
   GROUP BY a.model_name, a.strategy_name, b.tokens_per_second
)`.trim();

const qualityThroughputSql = (pointsCte: string, x: string) =>
  `
WITH ${pointsCte}
SELECT point, ${x}, accuracy
  FROM points
 ORDER BY ${x}, point`.trim();

// A point is on the frontier when nothing is at least as fast and as accurate and strictly better
// in one. `best_faster` is the best accuracy among strictly faster points (EXCLUDE GROUP drops the
// ties on speed), `best_as_fast` the best among points exactly as fast: beat the first, match the second.
const paretoFrontierSql = (pointsCte: string, x: string) =>
  `
WITH ${pointsCte},
ranked AS (
  SELECT point, ${x}, accuracy,
         max(accuracy) OVER (ORDER BY ${x} DESC
                             RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE GROUP) AS best_faster,
         max(accuracy) OVER (PARTITION BY ${x}) AS best_as_fast
    FROM points
)
SELECT point AS frontier_point,
       ${x} AS frontier_${x},
       accuracy AS frontier_accuracy
  FROM ranked
 WHERE (best_faster IS NULL OR accuracy > best_faster)
   AND accuracy >= best_as_fast
 ORDER BY ${x}, point`.trim();

export const QUALITY_THROUGHPUT_SQL = qualityThroughputSql(POINTS_CTE, 'prompts_per_second');
export const PARETO_FRONTIER_SQL = paretoFrontierSql(POINTS_CTE, 'prompts_per_second');
export const QUALITY_BENCHMARK_SQL = qualityThroughputSql(BENCHMARK_POINTS_CTE, 'tokens_per_second');
export const PARETO_BENCHMARK_FRONTIER_SQL = paretoFrontierSql(BENCHMARK_POINTS_CTE, 'tokens_per_second');

// Perplexity of a slice is exp(total NLL / total tokens) over every shard of the model's cells;
// only the two headline slices, not the distance/frequency bins.
export const SLICE_PERPLEXITY_SQL = `
SELECT c.model_name || ' · ' || c.strategy_name AS model,
       exp(sum(s.nll_sum) FILTER (WHERE s.slice = 'ar_hit')
           / nullif(sum(s.token_count) FILTER (WHERE s.slice = 'ar_hit'), 0)) AS ar_hit,
       exp(sum(s.nll_sum) FILTER (WHERE s.slice = 'other')
           / nullif(sum(s.token_count) FILTER (WHERE s.slice = 'other'), 0)) AS other
  FROM sweep_cells sc
  JOIN cells c ON c.key = sc.cell_key
  JOIN slice_stats s ON s.cell_key = c.key
 WHERE sc.sweep_id = '$sweep'
   AND s.slice IN ('ar_hit', 'other')
 GROUP BY c.model_name, c.strategy_name
 ORDER BY model`.trim();

// Tokens over seconds per bucket (not a mean of rates), so long shards weigh what they cost.
// Measurements not tied to a cell (standalone benchmarks) are named by their implementation.
export const PREFILL_THROUGHPUT_SQL = `
SELECT $__timeGroupAlias(t.created_at, $__interval),
       coalesce(c.model_name, t.implementation) || ' · ' || t.source AS metric,
       sum(t.tokens) / sum(t.seconds) AS prefill_tokens_per_second
  FROM throughput_measurements t
  LEFT JOIN cells c ON c.key = t.cell_key
 WHERE $__timeFilter(t.created_at)
   AND t.seconds > 0
 GROUP BY 1, 2
 ORDER BY 1, 2`.trim();

// The selected sweep's prefill benchmark (prefill_throughput cells): each point beside the
// attention baseline timed in the same process. The sweep report and the web dashboard read the
// same rows through this query (workers/lib/report/sql.ts binds `$sweep`), so they cannot drift apart.
export const PREFILL_BENCHMARK_SQL = `
WITH ${BENCHMARK_POINT_CTE}
SELECT c.model_name AS model,
       c.strategy_name AS strategy,
       m.batch_size AS batch,
       m.seq_len AS n,
       m.processed_len AS tokens_per_sequence,
       m.implementation,
       m.seconds,
       m.min_seconds,
       m.run_seconds,
       CASE WHEN m.row_count = 1 THEN m.row_tokens_per_second
            ELSE (m.batch_size * m.seq_len)::float / m.seconds END AS tokens_per_second,
       b.implementation AS baseline,
       b.seconds AS baseline_seconds,
       b.seconds / m.seconds AS speedup,
       m.gpu_name
  FROM bench_medians m
  JOIN cells c ON c.key = m.cell_key
  JOIN bench_medians b ON b.cell_key = m.cell_key AND b.batch_size = m.batch_size
                      AND b.seq_len = m.seq_len AND b.source = 'benchmark-baseline'
 WHERE m.source = 'benchmark'
 ORDER BY model, strategy, batch, n`.trim();
