// The Prisma client over node-postgres (Prisma 7: no engine binaries). One per process.
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../generated/prisma/client';
import { type Db } from '../../activities/db';

export type { Db };

export function createDb(databaseUrl: string): Db {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) });
}
