-- Where each second of a shard went (issue 17): the worker's queue, data, slice-NLL and scoring
-- phases beside load, prefill and decode, and the recording transaction's own time. Rows recorded before this
-- migration did not measure them: 0.
ALTER TABLE "shard_records"
    ADD COLUMN "queue_seconds" DOUBLE PRECISION NOT NULL DEFAULT 0,
    ADD COLUMN "data_seconds" DOUBLE PRECISION NOT NULL DEFAULT 0,
    ADD COLUMN "nll_seconds" DOUBLE PRECISION NOT NULL DEFAULT 0,
    ADD COLUMN "scoring_seconds" DOUBLE PRECISION NOT NULL DEFAULT 0,
    ADD COLUMN "record_seconds" DOUBLE PRECISION NOT NULL DEFAULT 0;
