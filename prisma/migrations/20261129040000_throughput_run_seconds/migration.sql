-- Every timed run of a benchmark point (issue 12): the report computes an interval of the
-- median from them, where it had only the median and the fastest run. Rows recorded before this
-- migration keep NULL, and the report falls back to the median-to-fastest range for them and
-- says so.
ALTER TABLE "throughput_measurements" ADD COLUMN "run_seconds" DOUBLE PRECISION[];
