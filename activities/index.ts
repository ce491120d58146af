// Composes every TypeScript activity from its dependencies, so tests can build them over a
// throwaway database without module mocking.
import { createCatalogActivities } from './catalog';
import { createDbActivities, type Db } from './db';
import { createNightlyActivities, type NightlyNotifier } from './nightly';
import { createPoolActivities, type PoolProvider } from './pool';

export function createActivities(deps: { db: Db; root: string; pool: PoolProvider; notify?: NightlyNotifier }) {
  return {
    ...createDbActivities(deps.db),
    ...createCatalogActivities(deps.root),
    ...createNightlyActivities(deps.db, deps.notify),
    ...createPoolActivities(deps.pool),
  };
}
