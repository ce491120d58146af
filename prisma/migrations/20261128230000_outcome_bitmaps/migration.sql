-- Per-cell outcome bitmaps beside the totals, and prefill totals per cell, so the dashboard never
-- scans examples to answer a page:
--   * `seen` has bit i set when example i has a row, `hits` when that example is correct. Pairing
--     two cells (compare, the nightly regression check, the JRT-Prompt margins) is then four
--     popcounts over a few hundred bytes instead of a join of 3,000 x 3,000 rows, and a page of
--     wrong or flipped examples is a list of bit positions fetched by primary key.
--   * One definition of "correct": score_is_correct(). The totals used to count `score = 1` while
--     the comparison counted `score >= 0.5`; every query now calls this function.
--   * shard_records keep per-cell prefill and progress totals the same way (cell_shard_totals), and
--     slice_stats per-cell perplexity sums (cell_slice_totals), so the grid and the sweeps list
--     read one row per cell (and slice).
-- The helpers are plain SQL expressions, not STRICT, so the planner inlines them into the queries
-- that call them (a NULL bitmap gives NULL counts).

CREATE FUNCTION score_is_correct(score double precision) RETURNS boolean
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN score >= 0.5;

-- `&`, `|` and `#` need bit strings of one length; a shorter bitmap means "no such examples".
CREATE FUNCTION bits_pad(b bit varying, len integer) RETURNS bit varying
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN CASE WHEN length(b) >= len THEN b ELSE b || repeat('0', len - length(b))::bit varying END;

CREATE FUNCTION bits_or(a bit varying, b bit varying) RETURNS bit varying
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN bits_pad(a, greatest(length(a), length(b))) | bits_pad(b, greatest(length(a), length(b)));

-- a without the bits of b, at a's length
CREATE FUNCTION bits_minus(a bit varying, b bit varying) RETURNS bit varying
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN a & ~substring(bits_pad(b, length(a)) FROM 1 FOR length(a));

-- The bitmaps of a set of example outcomes: bit i of `seen` for each id, of `hits` for the correct.
-- Only the span of the ids is built bit by bit (a shard's), the bits before it are zeros at once.
CREATE FUNCTION outcome_bits(ids integer[], correct boolean[], OUT seen bit varying, OUT hits bit varying)
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT (repeat('0', r.lo) || string_agg(CASE WHEN x.id IS NULL THEN '0' ELSE '1' END, '' ORDER BY g.i))::bit varying,
         (repeat('0', r.lo) || string_agg(CASE WHEN x.hit THEN '1' ELSE '0' END, '' ORDER BY g.i))::bit varying
    FROM (SELECT min(id) AS lo, max(id) AS hi FROM unnest(ids) id) r
    CROSS JOIN LATERAL generate_series(r.lo, r.hi) g(i)
    LEFT JOIN unnest(ids, correct) x(id, hit) ON x.id = g.i
   GROUP BY r.lo
$$;

-- Outcomes of two cells over the examples both have: right in both, only in a, only in b, in neither.
CREATE FUNCTION paired_outcomes(a_seen bit varying, a_hits bit varying, b_seen bit varying, b_hits bit varying)
  RETURNS TABLE (both_right integer, only_a integer, only_b integer, neither integer)
  LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 1
AS $$
  SELECT bit_count(p.s & p.a & p.b)::integer, bit_count(p.s & p.a & ~p.b)::integer,
         bit_count(p.s & ~p.a & p.b)::integer, bit_count(p.s & ~p.a & ~p.b)::integer
    FROM (SELECT bits_pad(a_seen, l.n) & bits_pad(b_seen, l.n) AS s, bits_pad(a_hits, l.n) AS a, bits_pad(b_hits, l.n) AS b
            FROM (SELECT greatest(length(a_seen), length(b_seen)) AS n) l) p
$$;

-- Positions of the set bits, in order, a page at a time.
CREATE FUNCTION bit_positions(b bit varying, skip integer, take integer) RETURNS SETOF integer
  LANGUAGE sql IMMUTABLE PARALLEL SAFE ROWS 100
AS $$
  SELECT i FROM generate_series(0, length(b) - 1) i WHERE get_bit(b, i) = 1 ORDER BY i OFFSET skip LIMIT take
$$;

ALTER TABLE "cell_scores" ADD COLUMN "seen" BIT VARYING NOT NULL DEFAULT B'',
                          ADD COLUMN "hits" BIT VARYING NOT NULL DEFAULT B'';

CREATE OR REPLACE FUNCTION cell_scores_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    INSERT INTO cell_scores AS s (cell_key, examples, correct, score_sum, seen, hits)
    SELECT d.cell_key, -d.n, -d.k, -d.total, b.seen, b.hits
      FROM (SELECT cell_key, count(*) AS n, count(*) FILTER (WHERE score_is_correct(score)) AS k, sum(score) AS total,
                   array_agg(example_id) AS ids, array_agg(score_is_correct(score)) AS correct
              FROM old_rows GROUP BY cell_key) d, outcome_bits(d.ids, d.correct) b
    ON CONFLICT (cell_key) DO UPDATE
      SET examples = s.examples + excluded.examples, correct = s.correct + excluded.correct,
          score_sum = s.score_sum + excluded.score_sum,
          seen = bits_minus(s.seen, excluded.seen), hits = bits_minus(s.hits, excluded.seen);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO cell_scores AS s (cell_key, examples, correct, score_sum, seen, hits)
    SELECT d.cell_key, d.n, d.k, d.total, b.seen, b.hits
      FROM (SELECT cell_key, count(*) AS n, count(*) FILTER (WHERE score_is_correct(score)) AS k, sum(score) AS total,
                   array_agg(example_id) AS ids, array_agg(score_is_correct(score)) AS correct
              FROM new_rows GROUP BY cell_key) d, outcome_bits(d.ids, d.correct) b
    ON CONFLICT (cell_key) DO UPDATE
      SET examples = s.examples + excluded.examples, correct = s.correct + excluded.correct,
          score_sum = s.score_sum + excluded.score_sum,
          seen = bits_or(s.seen, excluded.seen), hits = bits_or(s.hits, excluded.hits);
  END IF;
  DELETE FROM cell_scores WHERE examples = 0;
  RETURN NULL;
END $$;

-- rebuild what earlier versions recorded: the bitmaps, and `correct` by the one definition
TRUNCATE cell_scores;
INSERT INTO cell_scores (cell_key, examples, correct, score_sum, seen, hits)
SELECT d.cell_key, d.n, d.k, d.total, b.seen, b.hits
  FROM (SELECT cell_key, count(*) AS n, count(*) FILTER (WHERE score_is_correct(score)) AS k, sum(score) AS total,
               array_agg(example_id) AS ids, array_agg(score_is_correct(score)) AS correct
          FROM example_results GROUP BY cell_key) d, outcome_bits(d.ids, d.correct) b;

-- CreateTable
CREATE TABLE "cell_shard_totals" (
    "cell_key" TEXT NOT NULL,
    "shards" INTEGER NOT NULL,
    "examples_done" INTEGER NOT NULL,
    "prefill_tokens" BIGINT NOT NULL,
    "prefill_seconds" DOUBLE PRECISION NOT NULL,

    CONSTRAINT "cell_shard_totals_pkey" PRIMARY KEY ("cell_key")
);

CREATE FUNCTION cell_shard_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    INSERT INTO cell_shard_totals AS s (cell_key, shards, examples_done, prefill_tokens, prefill_seconds)
    SELECT cell_key, -count(*), -sum(example_end - example_start), -sum(prefill_tokens), -sum(prefill_seconds)
      FROM old_rows GROUP BY cell_key
    ON CONFLICT (cell_key) DO UPDATE
      SET shards = s.shards + excluded.shards, examples_done = s.examples_done + excluded.examples_done,
          prefill_tokens = s.prefill_tokens + excluded.prefill_tokens, prefill_seconds = s.prefill_seconds + excluded.prefill_seconds;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO cell_shard_totals AS s (cell_key, shards, examples_done, prefill_tokens, prefill_seconds)
    SELECT cell_key, count(*), sum(example_end - example_start), sum(prefill_tokens), sum(prefill_seconds)
      FROM new_rows GROUP BY cell_key
    ON CONFLICT (cell_key) DO UPDATE
      SET shards = s.shards + excluded.shards, examples_done = s.examples_done + excluded.examples_done,
          prefill_tokens = s.prefill_tokens + excluded.prefill_tokens, prefill_seconds = s.prefill_seconds + excluded.prefill_seconds;
  END IF;
  DELETE FROM cell_shard_totals WHERE shards = 0;
  RETURN NULL;
END $$;

CREATE TRIGGER cell_shard_totals_insert AFTER INSERT ON shard_records
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cell_shard_totals_apply();
CREATE TRIGGER cell_shard_totals_update AFTER UPDATE ON shard_records
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cell_shard_totals_apply();
CREATE TRIGGER cell_shard_totals_delete AFTER DELETE ON shard_records
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cell_shard_totals_apply();

INSERT INTO cell_shard_totals (cell_key, shards, examples_done, prefill_tokens, prefill_seconds)
SELECT cell_key, count(*), sum(example_end - example_start), sum(prefill_tokens), sum(prefill_seconds)
  FROM shard_records GROUP BY cell_key;

-- CreateTable
CREATE TABLE "cell_slice_totals" (
    "cell_key" TEXT NOT NULL,
    "slice" TEXT NOT NULL,
    "shards" INTEGER NOT NULL,
    "nll_sum" DOUBLE PRECISION NOT NULL,
    "token_count" BIGINT NOT NULL,

    CONSTRAINT "cell_slice_totals_pkey" PRIMARY KEY ("cell_key","slice")
);

CREATE FUNCTION cell_slice_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    INSERT INTO cell_slice_totals AS s (cell_key, slice, shards, nll_sum, token_count)
    SELECT cell_key, slice, -count(*), -sum(nll_sum), -sum(token_count) FROM old_rows GROUP BY cell_key, slice
    ON CONFLICT (cell_key, slice) DO UPDATE
      SET shards = s.shards + excluded.shards, nll_sum = s.nll_sum + excluded.nll_sum, token_count = s.token_count + excluded.token_count;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO cell_slice_totals AS s (cell_key, slice, shards, nll_sum, token_count)
    SELECT cell_key, slice, count(*), sum(nll_sum), sum(token_count) FROM new_rows GROUP BY cell_key, slice
    ON CONFLICT (cell_key, slice) DO UPDATE
      SET shards = s.shards + excluded.shards, nll_sum = s.nll_sum + excluded.nll_sum, token_count = s.token_count + excluded.token_count;
  END IF;
  DELETE FROM cell_slice_totals WHERE shards = 0;
  RETURN NULL;
END $$;

CREATE TRIGGER cell_slice_totals_insert AFTER INSERT ON slice_stats
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cell_slice_totals_apply();
CREATE TRIGGER cell_slice_totals_update AFTER UPDATE ON slice_stats
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cell_slice_totals_apply();
CREATE TRIGGER cell_slice_totals_delete AFTER DELETE ON slice_stats
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cell_slice_totals_apply();

INSERT INTO cell_slice_totals (cell_key, slice, shards, nll_sum, token_count)
SELECT cell_key, slice, count(*), sum(nll_sum), sum(token_count) FROM slice_stats GROUP BY cell_key, slice;
