// The orchestrator worker as a process of its own, against real deployments:
//   DATABASE_URL=... TEMPORAL_ADDRESS=... tsx workers/orchestrator.ts
import { NativeConnection } from '@temporalio/worker';
import { ORCHESTRATOR_QUEUE } from '../workflows/contract';
import { createDb } from './lib/db-client';
import { loadEnv } from './lib/env';
import { createOrchestratorWorker } from './lib/orchestrator-worker';

const env = loadEnv({ requireExternal: true });
const connection = await NativeConnection.connect({ address: env.temporalAddress });
const db = createDb(env.databaseUrl);
const worker = await createOrchestratorWorker({ connection, namespace: env.namespace, db });
console.log(`orchestrator worker ready: queue=${ORCHESTRATOR_QUEUE} temporal=${env.temporalAddress}`);
await worker.run();
await db.$disconnect();
await connection.close();
