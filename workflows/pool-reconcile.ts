// The periodic pool reconcile (a Temporal schedule the orchestrator creates with the kubernetes
// pool provider): removes the GPU pools of sweeps whose workflow is no longer running, so a
// sweep terminated from outside, or one whose cleanup never ran, leaves nothing behind for long.
import { proxyActivities } from '@temporalio/workflow';
import type { PoolActivities } from '../activities/pool';

const { poolReconcile } = proxyActivities<PoolActivities>({
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 3 },
});

export const POOL_RECONCILE_SCHEDULE = 'twice-pool-reconcile';

export async function poolReconcileWorkflow(): Promise<string[]> {
  return poolReconcile();
}
