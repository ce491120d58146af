// The orchestrator worker: runs the workflows and the TypeScript activities (database, catalog)
// on the orchestrator task queue. Started in-process by the embedded stack, or on its own:
//   DATABASE_URL=... TEMPORAL_ADDRESS=... tsx workers/orchestrator.ts
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { createActivities } from '../activities';
import type { PoolProvider } from '../activities/pool';
import { createDb, type Db } from '../activities/prisma';
import { ORCHESTRATOR_QUEUE } from '../workflows/contract';
import { loadEnv } from './env';
import { ensureReconcileSchedule, poolFromEnv } from './pool-config';
import { repoRoot } from './paths';

export async function createOrchestratorWorker(opts: {
  connection: NativeConnection;
  namespace: string;
  db: Db;
  /** the GPU worker pool provider: the embedded stack's local workers, or Kubernetes */
  pool: PoolProvider;
  taskQueue?: string;
}): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue ?? ORCHESTRATOR_QUEUE,
    workflowsPath: fileURLToPath(new URL('../workflows/index.ts', import.meta.url)),
    activities: createActivities({ db: opts.db, root: repoRoot, pool: opts.pool }),
    // logs from the SDK go to stderr at warn level; the CLI owns stdout
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const env = loadEnv({ requireExternal: true });
  const connection = await NativeConnection.connect({ address: env.temporalAddress });
  const db = createDb(env.databaseUrl);
  const pool = poolFromEnv(process.env, { address: env.temporalAddress, namespace: env.namespace });
  if (pool.provider.name === 'kubernetes') {
    const client = new Client({ connection: await Connection.connect({ address: env.temporalAddress }), namespace: env.namespace });
    await ensureReconcileSchedule(client, pool.reconcileMinutes);
    await client.connection.close();
  }
  const worker = await createOrchestratorWorker({ connection, namespace: env.namespace, db, pool: pool.provider });
  console.log(`orchestrator worker ready: queue=${ORCHESTRATOR_QUEUE} temporal=${env.temporalAddress} pool=${pool.provider.name}`);
  await worker.run();
  await db.$disconnect();
  await connection.close();
}
