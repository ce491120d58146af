// Runs a dashboard query (dashboards/panels.ts) for one sweep with the sweep id as a real bind
// parameter: Grafana substitutes `'$sweep'` itself, everyone else goes through here.
import { Prisma } from '../../../generated/prisma/client';
import { type Db } from '../db-client';

const SWEEP_VARIABLE = "'$sweep'";

/** The query with each quoted `$sweep` turned into a placeholder bound to `sweepId`. */
export function sweepQuery(sql: string, sweepId: string): Prisma.Sql {
  const parts = sql.split(SWEEP_VARIABLE);
  if (parts.length < 2) throw new Error(`the query has no ${SWEEP_VARIABLE} to bind: ${sql.slice(0, 80)}...`);
  if (/\$__|\$sweep/.test(parts.join(''))) throw new Error('the query uses a Grafana macro that only Grafana can fill in');
  return Prisma.sql(parts, ...parts.slice(1).map(() => sweepId));
}

export function querySweep<T>(db: Db, sql: string, sweepId: string): Promise<T[]> {
  return db.$queryRaw<T[]>(sweepQuery(sql, sweepId));
}
