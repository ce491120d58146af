-- Per-cell example totals (count, correct, score sum), kept by statement-level triggers on
-- example_results, so the dashboard's grid and the sweep report read one row per cell instead of
-- aggregating every example (3,000 per cell, 600,000 per sweep) on each request. Rows of a cell
-- are only added while it runs and never change once it is done, but updates and deletes are
-- counted too so the totals cannot drift.

-- CreateTable
CREATE TABLE "cell_scores" (
    "cell_key" TEXT NOT NULL,
    "examples" INTEGER NOT NULL,
    "correct" INTEGER NOT NULL,
    "score_sum" DOUBLE PRECISION NOT NULL,

    CONSTRAINT "cell_scores_pkey" PRIMARY KEY ("cell_key")
);

CREATE FUNCTION cell_scores_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    INSERT INTO cell_scores AS s (cell_key, examples, correct, score_sum)
    SELECT cell_key, -count(*), -count(*) FILTER (WHERE score = 1), -sum(score) FROM old_rows GROUP BY cell_key
    ON CONFLICT (cell_key) DO UPDATE
      SET examples = s.examples + excluded.examples, correct = s.correct + excluded.correct, score_sum = s.score_sum + excluded.score_sum;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO cell_scores AS s (cell_key, examples, correct, score_sum)
    SELECT cell_key, count(*), count(*) FILTER (WHERE score = 1), sum(score) FROM new_rows GROUP BY cell_key
    ON CONFLICT (cell_key) DO UPDATE
      SET examples = s.examples + excluded.examples, correct = s.correct + excluded.correct, score_sum = s.score_sum + excluded.score_sum;
  END IF;
  DELETE FROM cell_scores WHERE examples = 0;
  RETURN NULL;
END $$;

CREATE TRIGGER cell_scores_insert AFTER INSERT ON example_results
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cell_scores_apply();
CREATE TRIGGER cell_scores_update AFTER UPDATE ON example_results
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cell_scores_apply();
CREATE TRIGGER cell_scores_delete AFTER DELETE ON example_results
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cell_scores_apply();

-- cells recorded before this migration
INSERT INTO cell_scores (cell_key, examples, correct, score_sum)
SELECT cell_key, count(*), count(*) FILTER (WHERE score = 1), sum(score) FROM example_results GROUP BY cell_key;
