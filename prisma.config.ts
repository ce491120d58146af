// Prisma CLI configuration. The runtime client uses @prisma/adapter-pg (no engine binaries);
// migrations are applied by workers/lib/migrations.ts, which keeps Prisma's bookkeeping so
// `prisma migrate deploy` works too wherever Prisma's schema engine is installed.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://unused@127.0.0.1:1/unused' },
});
