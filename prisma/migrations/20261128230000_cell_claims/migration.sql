-- Concurrent sweeps share cells: the sweep that claims a cell computes it and the others wait for
-- it (a claim whose sweep has ended, or whose workflow no longer runs, is taken over). A sweep
-- recorded failed whose cells were all completed later by another sweep is completed, and says
-- by which sweep.

-- AlterTable
ALTER TABLE "cells" ADD COLUMN "claimed_by" TEXT;
ALTER TABLE "cells" ADD COLUMN "claimed_at" TIMESTAMP(3);

-- AlterTable
ALTER TABLE "sweeps" ADD COLUMN "completed_by" TEXT;

-- CreateIndex
CREATE INDEX "cells_claimed_by_idx" ON "cells"("claimed_by");
