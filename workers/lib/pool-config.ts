// The GPU pool provider an orchestrator process uses, from its environment (docs/env.md):
// `local` (default: worker processes that poll the shared GPU queue, started by the embedded
// stack or by hand) or `kubernetes` (per-sweep Deployments in the orchestrator's namespace).
// With kubernetes it also keeps the reconcile schedule that removes abandoned pools.
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import * as k8s from '@kubernetes/client-node';
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { LocalPool, type PoolProvider } from '../../activities/pool';
import { KubernetesPool } from '../../activities/pool-kubernetes';
import { ORCHESTRATOR_QUEUE } from '../../workflows/contract';
import { POOL_RECONCILE_SCHEDULE } from '../../workflows/pool-reconcile';

const IN_CLUSTER_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

const PoolEnv = z.object({
  TWICE_POOL_PROVIDER: z.enum(['local', 'kubernetes']).default('local'),
  TWICE_POOL_NAMESPACE: z.string().min(1).optional(),
  TWICE_POOL_IMAGE: z.string().min(1).optional(),
  TWICE_POOL_DEVICE: z.enum(['auto', 'cpu', 'cuda']).default('cuda'),
  TWICE_POOL_TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[^:\s]+:\d+$/, 'expected host:port')
    .optional(),
  TWICE_POOL_RECONCILE_MINUTES: z.coerce.number().int().min(1).max(1440).default(10),
});

export interface PoolEnvironment {
  provider: PoolProvider;
  reconcileMinutes: number;
}

export function poolFromEnv(env: NodeJS.ProcessEnv, temporal: { address: string; namespace: string }): PoolEnvironment {
  const parsed = PoolEnv.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message} (got ${JSON.stringify(env[String(i.path[0])])})`);
    throw new Error(`invalid pool environment:\n${problems.join('\n')}`);
  }
  const e = parsed.data;
  if (e.TWICE_POOL_PROVIDER === 'local') return { provider: new LocalPool(null), reconcileMinutes: e.TWICE_POOL_RECONCILE_MINUTES };
  if (!e.TWICE_POOL_IMAGE) throw new Error('TWICE_POOL_PROVIDER=kubernetes needs TWICE_POOL_IMAGE (the inference worker image)');
  const kubeConfig = new k8s.KubeConfig();
  // KUBECONFIG or ~/.kube/config, else the pod's ServiceAccount
  kubeConfig.loadFromDefault();
  const namespace =
    e.TWICE_POOL_NAMESPACE ??
    (existsSync(IN_CLUSTER_NAMESPACE)
      ? readFileSync(IN_CLUSTER_NAMESPACE, 'utf8').trim()
      : (kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace ?? 'twice'));
  const provider = new KubernetesPool(kubeConfig, {
    namespace,
    image: e.TWICE_POOL_IMAGE,
    device: e.TWICE_POOL_DEVICE,
    temporalAddress: e.TWICE_POOL_TEMPORAL_ADDRESS ?? temporal.address,
    temporalNamespace: temporal.namespace,
  });
  return { provider, reconcileMinutes: e.TWICE_POOL_RECONCILE_MINUTES };
}

/** Creates the reconcile schedule once; an existing one (another orchestrator replica's) is kept. */
export async function ensureReconcileSchedule(client: Client, minutes: number, taskQueue = ORCHESTRATOR_QUEUE): Promise<void> {
  try {
    await client.schedule.create({
      scheduleId: POOL_RECONCILE_SCHEDULE,
      spec: { intervals: [{ every: `${minutes} minutes` }] },
      action: { type: 'startWorkflow', workflowType: 'poolReconcileWorkflow', taskQueue, args: [] },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
}
