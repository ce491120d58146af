// The Prisma client over node-postgres (Prisma 7: no engine binaries). One per process.
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../generated/prisma/client';
import { type Db } from '../../activities/db';

export type { Db };

export function createDb(databaseUrl: string): Db {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) });
}

/**
 * Opens a connection and pays the client's first-use costs (an interactive transaction, a plain
 * query, an ORM query: about 0.4 s on a fresh process, 5 ms each afterwards, measured against
 * embedded PostgreSQL) before an orchestrator takes work, rather than in the first sweep's
 * registration while its workers wait.
 */
export async function warmDb(db: Db): Promise<void> {
  await db.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT 1`;
  });
  await db.cell.findFirst({ select: { key: true } });
}
