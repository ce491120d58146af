// The orchestrator worker: runs the workflows and the TypeScript activities (database, catalog, GPU pool)
// on the orchestrator task queue. The embedded stack creates it in-process; workers/orchestrator.ts
// runs it on its own against real deployments.
import { type NativeConnection, Worker } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { createActivities } from '../../activities/index';
import { type Db } from '../../activities/db';
import type { PoolProvider } from '../../activities/pool';
import { type NightlyNotifier } from '../../activities/nightly';
import { ORCHESTRATOR_QUEUE } from '../../workflows/contract';
import { warmDb } from './db-client';
import { repoRoot } from './paths';
import { nightlyNotifierFromEnv } from './slack-notify';

export async function createOrchestratorWorker(opts: {
  connection: NativeConnection;
  namespace: string;
  db: Db;
  /** the GPU worker pool provider: the embedded stack's local workers, or Kubernetes */
  pool: PoolProvider;
  taskQueue?: string;
  /** where finished nights are announced; by default Slack when the environment configures it */
  notify?: NightlyNotifier;
}): Promise<Worker> {
  // best effort: a database that does not answer yet is the activities' to report (they retry)
  await warmDb(opts.db).catch(() => undefined);
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue ?? ORCHESTRATOR_QUEUE,
    workflowsPath: fileURLToPath(new URL('../../workflows/index.ts', import.meta.url)),
    activities: createActivities({
      db: opts.db,
      root: repoRoot,
      pool: opts.pool,
      notify: opts.notify ?? nightlyNotifierFromEnv(),
    }),
    // logs from the SDK go to stderr at warn level; the CLI owns stdout
  });
}
