// Why a sweep ran the cells it ran: which part of the cell key changed since the last finished one.
import { CELL_KEY_FIELDS } from '../../../workflows/sweep-spec';
import { type Db } from '../db-client';

/**
 * For each cell a sweep had to run, why: no earlier cell for this (model, task, strategy), or
 * which part of its key differs from the most recent one that was finished.
 */
export async function explainNewCells(db: Db, sweepId: string): Promise<string[]> {
  const fresh = await db.cell.findMany({
    where: { sweeps: { some: { sweepId, reused: false } } },
    orderBy: [{ modelName: 'asc' }, { taskName: 'asc' }, { strategyName: 'asc' }],
  });
  const lines: string[] = [];
  for (const cell of fresh) {
    const prior = await db.cell.findFirst({
      where: {
        modelName: cell.modelName,
        taskName: cell.taskName,
        strategyName: cell.strategyName,
        status: 'done',
        key: { not: cell.key },
        createdAt: { lte: cell.createdAt },
        // not another entry of the same sweep (one task listed twice with different params)
        sweeps: { none: { sweepId } },
      },
      orderBy: { finishedAt: 'desc' },
    });
    const what = `${cell.modelName} / ${cell.taskName} / ${cell.strategyName}`;
    if (!prior) {
      lines.push(`${what}: ran (first time evaluated)`);
      continue;
    }
    const changed = CELL_KEY_FIELDS.filter(([f]) => JSON.stringify(cell[f]) !== JSON.stringify(prior[f])).map(
      ([f, label]) => `${label} ${JSON.stringify(prior[f])} -> ${JSON.stringify(cell[f])}`,
    );
    lines.push(`${what}: ran because ${changed.length ? changed.join('; ') : 'its key changed'}`);
  }
  return lines;
}
