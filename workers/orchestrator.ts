// The orchestrator worker as a process of its own, against real deployments:
//   DATABASE_URL=... TEMPORAL_ADDRESS=... tsx workers/orchestrator.ts
// TWICE_POOL_PROVIDER=kubernetes makes it run each sweep's GPU workers as pods (docs/env.md).
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { ORCHESTRATOR_QUEUE } from '../workflows/contract';
import { createDb } from './lib/db-client';
import { loadEnv } from './lib/env';
import { createOrchestratorWorker } from './lib/orchestrator-worker';
import { ensureReconcileSchedule, poolFromEnv } from './lib/pool-config';

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
