-- Benchmark points (the prefill_throughput task): one row per (length, batch) point and one for
-- the attention baseline timed beside it, so a shard now holds several rows per source.

-- DropIndex
DROP INDEX "throughput_measurements_cell_key_shard_index_source_key";

-- AlterTable
ALTER TABLE "throughput_measurements" ADD COLUMN     "example_id" INTEGER,
ADD COLUMN     "min_seconds" DOUBLE PRECISION,
ADD COLUMN     "processed_len" INTEGER,
ADD COLUMN     "runs" INTEGER;

-- CreateIndex
CREATE UNIQUE INDEX "throughput_measurements_cell_key_shard_index_source_example_id_key" ON "throughput_measurements"("cell_key", "shard_index", "source", "example_id");
