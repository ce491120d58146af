// Composes every TypeScript activity from its dependencies, so tests can build them over a
// throwaway database without module mocking.
import { createCatalogActivities } from './catalog';
import { createDbActivities } from './db';
import { type Db } from './prisma';

export function createActivities(deps: { db: Db; root: string }) {
  return { ...createDbActivities(deps.db), ...createCatalogActivities(deps.root) };
}
