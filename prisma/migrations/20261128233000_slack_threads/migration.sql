-- The Slack threads `twice slack` follows, so a restarted app picks them up where it stopped:
-- progress goes on in the same thread and the summary is posted once. No foreign key to sweeps:
-- the thread is opened as the sweep starts, before its workflow records the sweep row.

-- CreateTable
CREATE TABLE "slack_threads" (
    "sweep_id" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "thread_ts" TEXT NOT NULL,
    "last_progress" TEXT,
    "summary_posted_at" TIMESTAMP(3),
    "finished_at" TIMESTAMP(3),
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "slack_threads_pkey" PRIMARY KEY ("sweep_id")
);

-- CreateIndex
CREATE INDEX "slack_threads_finished_at_idx" ON "slack_threads"("finished_at");

