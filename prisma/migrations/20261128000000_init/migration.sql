-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateTable
CREATE TABLE "sweeps" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "spec_file" TEXT NOT NULL,
    "spec_yaml" TEXT NOT NULL,
    "spec" JSONB NOT NULL,
    "spec_digest" TEXT NOT NULL,
    "workflow_id" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'running',
    "git_sha" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMP(3),

    CONSTRAINT "sweeps_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "cells" (
    "key" TEXT NOT NULL,
    "model_name" TEXT NOT NULL,
    "model_revision" TEXT NOT NULL,
    "model_family" TEXT NOT NULL,
    "dtype" TEXT NOT NULL,
    "task_name" TEXT NOT NULL,
    "task_version" INTEGER NOT NULL,
    "task_params" JSONB NOT NULL,
    "task_data_digest" TEXT NOT NULL,
    "strategy_name" TEXT NOT NULL,
    "strategy_version" INTEGER NOT NULL,
    "strategy_params" JSONB NOT NULL,
    "generation" JSONB NOT NULL,
    "scorer" JSONB NOT NULL,
    "slices" JSONB,
    "num_examples" INTEGER NOT NULL,
    "num_shards" INTEGER NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "error" TEXT,
    "provenance" JSONB,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMP(3),

    CONSTRAINT "cells_pkey" PRIMARY KEY ("key")
);

-- CreateTable
CREATE TABLE "sweep_cells" (
    "sweep_id" TEXT NOT NULL,
    "cell_key" TEXT NOT NULL,
    "reused" BOOLEAN NOT NULL DEFAULT false,

    CONSTRAINT "sweep_cells_pkey" PRIMARY KEY ("sweep_id","cell_key")
);

-- CreateTable
CREATE TABLE "shard_records" (
    "cell_key" TEXT NOT NULL,
    "shard_index" INTEGER NOT NULL,
    "example_start" INTEGER NOT NULL,
    "example_end" INTEGER NOT NULL,
    "load_seconds" DOUBLE PRECISION NOT NULL,
    "prefill_seconds" DOUBLE PRECISION NOT NULL,
    "decode_seconds" DOUBLE PRECISION NOT NULL,
    "prefill_tokens" INTEGER NOT NULL,
    "batches" INTEGER NOT NULL,
    "worker" JSONB NOT NULL,
    "recorded_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "shard_records_pkey" PRIMARY KEY ("cell_key","shard_index")
);

-- CreateTable
CREATE TABLE "example_results" (
    "cell_key" TEXT NOT NULL,
    "example_id" INTEGER NOT NULL,
    "shard_index" INTEGER NOT NULL,
    "prompt_digest" TEXT NOT NULL,
    "prediction" TEXT NOT NULL,
    "gold" JSONB NOT NULL,
    "score" DOUBLE PRECISION NOT NULL,
    "prompt_tokens" INTEGER NOT NULL,
    "generated_tokens" INTEGER NOT NULL,

    CONSTRAINT "example_results_pkey" PRIMARY KEY ("cell_key","example_id")
);

-- CreateTable
CREATE TABLE "slice_stats" (
    "cell_key" TEXT NOT NULL,
    "shard_index" INTEGER NOT NULL,
    "slice" TEXT NOT NULL,
    "nll_sum" DOUBLE PRECISION NOT NULL,
    "token_count" INTEGER NOT NULL,

    CONSTRAINT "slice_stats_pkey" PRIMARY KEY ("cell_key","shard_index","slice")
);

-- CreateTable
CREATE TABLE "throughput_measurements" (
    "id" SERIAL NOT NULL,
    "cell_key" TEXT,
    "shard_index" INTEGER,
    "source" TEXT NOT NULL,
    "implementation" TEXT NOT NULL,
    "seq_len" INTEGER,
    "batch_size" INTEGER,
    "tokens" INTEGER NOT NULL,
    "seconds" DOUBLE PRECISION NOT NULL,
    "tokens_per_second" DOUBLE PRECISION NOT NULL,
    "device" TEXT NOT NULL,
    "gpu_name" TEXT,
    "versions" JSONB NOT NULL,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "throughput_measurements_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "sweeps_created_at_idx" ON "sweeps"("created_at");

-- CreateIndex
CREATE INDEX "cells_model_name_task_name_strategy_name_idx" ON "cells"("model_name", "task_name", "strategy_name");

-- CreateIndex
CREATE INDEX "sweep_cells_cell_key_idx" ON "sweep_cells"("cell_key");

-- CreateIndex
CREATE INDEX "throughput_measurements_implementation_idx" ON "throughput_measurements"("implementation");

-- CreateIndex
CREATE UNIQUE INDEX "throughput_measurements_cell_key_shard_index_source_key" ON "throughput_measurements"("cell_key", "shard_index", "source");

-- AddForeignKey
ALTER TABLE "sweep_cells" ADD CONSTRAINT "sweep_cells_sweep_id_fkey" FOREIGN KEY ("sweep_id") REFERENCES "sweeps"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sweep_cells" ADD CONSTRAINT "sweep_cells_cell_key_fkey" FOREIGN KEY ("cell_key") REFERENCES "cells"("key") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "shard_records" ADD CONSTRAINT "shard_records_cell_key_fkey" FOREIGN KEY ("cell_key") REFERENCES "cells"("key") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "example_results" ADD CONSTRAINT "example_results_cell_key_fkey" FOREIGN KEY ("cell_key") REFERENCES "cells"("key") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "slice_stats" ADD CONSTRAINT "slice_stats_cell_key_fkey" FOREIGN KEY ("cell_key") REFERENCES "cells"("key") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "throughput_measurements" ADD CONSTRAINT "throughput_measurements_cell_key_fkey" FOREIGN KEY ("cell_key") REFERENCES "cells"("key") ON DELETE CASCADE ON UPDATE CASCADE;

