// The kubernetes pool provider: per sweep, one Deployment of GPU inference workers per pool group
// (workflows/pool.ts), all owned by one anchor ConfigMap and labelled with the sweep, in the
// orchestrator's own namespace. Deployments rather than Jobs: the workers are long-running pollers
// of a task queue, not run-to-completion work, so the pool is sized by `replicas` (scaled down as
// models finish), and an evicted or crashed pod is replaced by the controller while Temporal
// retries its shard elsewhere. Deleting the anchor lets the garbage collector remove anything a
// crash left behind; remove() also deletes the Deployments directly and waits until no object
// with the sweep's label is left.
import { ApplicationFailure } from '@temporalio/common';
import * as k8s from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { PoolPlan, PoolStatus } from '../workflows/pool';
import type { PoolObjectRef, PoolProvider } from './pool';

export const LABELS = {
  app: 'app.kubernetes.io/name',
  partOf: 'app.kubernetes.io/part-of',
  managedBy: 'app.kubernetes.io/managed-by',
  sweep: 'twice.dev/sweep',
  group: 'twice.dev/group',
} as const;
const ANNOTATIONS = { sweepId: 'twice.dev/sweep-id', workflowId: 'twice.dev/workflow-id' } as const;
const MANAGED = { [LABELS.partOf]: 'twice', [LABELS.managedBy]: 'twice-orchestrator' };
const POOL_APP = 'twice-pool';
const GPU = 'nvidia.com/gpu';

export const KubernetesPoolConfig = z
  .object({
    namespace: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'expected a namespace name')
      .max(63),
    image: z.string().min(1),
    temporalAddress: z.string().regex(/^[^:\s]+:\d+$/, 'expected host:port'),
    temporalNamespace: z.string().min(1),
    device: z.enum(['auto', 'cpu', 'cuda']).default('cuda'),
    cpuRequest: z.string().min(1).default('4'),
    memoryRequest: z.string().min(1).default('32Gi'),
    memoryLimit: z.string().min(1).default('64Gi'),
  })
  .strict();
export type KubernetesPoolConfig = z.input<typeof KubernetesPoolConfig>;

/** Object names must be DNS labels; sweep ids can be long, so names and labels use a digest. */
export const sweepLabel = (sweepId: string) => createHash('sha256').update(sweepId).digest('hex').slice(0, 16);
const anchorName = (sweepId: string) => `twice-pool-${sweepLabel(sweepId)}`;
const deploymentName = (sweepId: string, group: string) => `twice-pool-${sweepLabel(sweepId)}-${group}`;

function httpCode(err: unknown): number | undefined {
  return err instanceof k8s.ApiException ? err.code : undefined;
}

/** The quotas on nvidia.com/gpu in the namespace, with what is left of each. */
interface GpuQuota {
  name: string;
  hard: number;
  used: number;
}

export class KubernetesPool implements PoolProvider {
  readonly name = 'kubernetes' as const;
  private readonly config: z.output<typeof KubernetesPoolConfig>;
  private readonly core: k8s.CoreV1Api;
  private readonly apps: k8s.AppsV1Api;

  constructor(kubeConfig: k8s.KubeConfig, config: KubernetesPoolConfig) {
    this.config = KubernetesPoolConfig.parse(config);
    this.core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.apps = kubeConfig.makeApiClient(k8s.AppsV1Api);
  }

  private get namespace() {
    return this.config.namespace;
  }

  private selector(sweepId?: string) {
    const parts = [`${LABELS.app}=${POOL_APP}`];
    if (sweepId) parts.push(`${LABELS.sweep}=${sweepLabel(sweepId)}`);
    return parts.join(',');
  }

  async apply(plan: PoolPlan, workflowId: string): Promise<PoolStatus> {
    const { sweepId, settings } = plan;
    const existing = new Map((await this.deployments(sweepId)).map((d) => [d.metadata!.labels![LABELS.group]!, d]));
    const replicas = { ...plan.replicas };
    const shrunkBy = await this.fitQuota(sweepId, replicas, settings.gpusPerPod, existing);
    const total = Object.values(replicas).reduce((a, b) => a + b, 0);
    const wanted = Object.values(plan.replicas).reduce((a, b) => a + b, 0);
    if (wanted > 0 && total === 0) {
      // nothing fits: leave nothing of this sweep behind, and do not retry
      await this.remove(sweepId);
      throw ApplicationFailure.nonRetryable(
        `ResourceQuota ${shrunkBy} in namespace ${this.namespace} leaves no room for one pod with ${settings.gpusPerPod} ${GPU}: the sweep needs at least one GPU pod`,
        'PoolQuotaExceeded',
      );
    }
    // nothing to run and nothing running (every cell reused): no objects at all
    if (total === 0 && existing.size === 0) return { provider: 'kubernetes', desired: replicas, ready: {}, shrunkBy };
    const owner = await this.ensureAnchor(sweepId, workflowId);
    for (const group of plan.groups) {
      const n = replicas[group.id] ?? 0;
      const current = existing.get(group.id);
      if (current) {
        if (current.spec?.replicas !== n) {
          await this.apps.patchNamespacedDeployment(
            { name: current.metadata!.name!, namespace: this.namespace, body: { spec: { replicas: n } } },
            k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
          );
        }
      } else if (n > 0) {
        await this.apps.createNamespacedDeployment({ namespace: this.namespace, body: this.deployment(plan, group.id, n, owner, workflowId) });
      }
    }
    // desired is the plan after the quota, with the groups that got no pod (never created) at 0
    const status = await this.status(sweepId);
    return { ...status, desired: replicas, shrunkBy };
  }

  /**
   * Lowers `replicas` (latest groups first: model-major work needs the early ones now) until the
   * sweep's GPUs fit every quota on nvidia.com/gpu. Returns the name of the quota that bound, if any.
   */
  private async fitQuota(
    sweepId: string,
    replicas: Record<string, number>,
    gpusPerPod: number,
    existing: Map<string, k8s.V1Deployment>,
  ): Promise<string | null> {
    const quotas = await this.gpuQuotas();
    if (quotas.length === 0) return null;
    // the sweep's own pods are counted in `used`; they are what is being resized
    let mine = 0;
    for (const d of existing.values()) mine += (d.spec?.replicas ?? 0) * gpusPerPod;
    let bound: string | null = null;
    const groups = Object.keys(replicas).reverse();
    for (const q of quotas) {
      const room = Math.max(0, q.hard - q.used + mine);
      let need = Object.values(replicas).reduce((a, b) => a + b, 0) * gpusPerPod;
      for (const g of groups) {
        while (need > room && replicas[g]! > 0) {
          replicas[g]! -= 1;
          need -= gpusPerPod;
          bound = q.name;
        }
      }
    }
    return bound;
  }

  private async gpuQuotas(): Promise<GpuQuota[]> {
    const list = await this.core.listNamespacedResourceQuota({ namespace: this.namespace });
    const out: GpuQuota[] = [];
    for (const q of list.items) {
      for (const key of [`requests.${GPU}`, `limits.${GPU}`]) {
        const hard = q.status?.hard?.[key] ?? q.spec?.hard?.[key];
        if (hard === undefined) continue;
        out.push({ name: q.metadata!.name!, hard: Number(hard), used: Number(q.status?.used?.[key] ?? 0) });
      }
    }
    return out;
  }

  private async ensureAnchor(sweepId: string, workflowId: string): Promise<k8s.V1OwnerReference> {
    const name = anchorName(sweepId);
    let cm: k8s.V1ConfigMap;
    try {
      cm = await this.core.readNamespacedConfigMap({ name, namespace: this.namespace });
    } catch (err) {
      if (httpCode(err) !== 404) throw err;
      cm = await this.core.createNamespacedConfigMap({
        namespace: this.namespace,
        body: {
          metadata: {
            name,
            labels: { [LABELS.app]: POOL_APP, ...MANAGED, [LABELS.sweep]: sweepLabel(sweepId) },
            annotations: { [ANNOTATIONS.sweepId]: sweepId, [ANNOTATIONS.workflowId]: workflowId },
          },
          data: { sweepId, workflowId },
        },
      });
    }
    return { apiVersion: 'v1', kind: 'ConfigMap', name, uid: cm.metadata!.uid!, blockOwnerDeletion: true };
  }

  private deployment(plan: PoolPlan, groupId: string, replicas: number, owner: k8s.V1OwnerReference, workflowId: string): k8s.V1Deployment {
    const group = plan.groups.find((g) => g.id === groupId)!;
    const { settings, sweepId } = plan;
    const labels = { [LABELS.app]: POOL_APP, ...MANAGED, [LABELS.sweep]: sweepLabel(sweepId), [LABELS.group]: groupId };
    const gpus = String(settings.gpusPerPod);
    return {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: deploymentName(sweepId, groupId),
        labels,
        annotations: { [ANNOTATIONS.sweepId]: sweepId, [ANNOTATIONS.workflowId]: workflowId, 'twice.dev/models': group.models.join(',') },
        ownerReferences: [owner],
      },
      spec: {
        replicas,
        selector: { matchLabels: { [LABELS.app]: POOL_APP, [LABELS.sweep]: sweepLabel(sweepId), [LABELS.group]: groupId } },
        // a replacement pod must load its models from scratch: never run two for one slot
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } },
        template: {
          metadata: { labels, annotations: { 'twice.dev/models': group.models.join(',') } },
          spec: {
            terminationGracePeriodSeconds: 300,
            nodeSelector: {
              [`${GPU}.present`]: 'true',
              ...(settings.gpuType ? { [`${GPU}.product`]: settings.gpuType } : {}),
              ...settings.nodeSelector,
            },
            tolerations: [{ key: GPU, operator: 'Exists', effect: 'NoSchedule' }],
            automountServiceAccountToken: false,
            securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001 },
            containers: [
              {
                name: 'inference',
                image: this.config.image,
                command: ['python'],
                args: [
                  '-m',
                  'twice_inference.worker',
                  '--address',
                  this.config.temporalAddress,
                  '--namespace',
                  this.config.temporalNamespace,
                  '--task-queue',
                  group.queue,
                  '--device',
                  this.config.device,
                  // every model of the group stays resident: each is loaded once per pod
                  '--model-cache',
                  String(group.models.length),
                  '--graceful-shutdown-seconds',
                  '240',
                ],
                env: [
                  { name: 'HF_HOME', value: '/cache/huggingface' },
                  { name: 'HF_HUB_OFFLINE', value: '1' },
                  { name: 'PYTHONDONTWRITEBYTECODE', value: '1' },
                  { name: 'HOME', value: '/tmp' },
                ],
                readinessProbe: {
                  exec: { command: ['python', '-c', 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'] },
                  periodSeconds: 60,
                  timeoutSeconds: 30,
                },
                resources: {
                  requests: { cpu: this.config.cpuRequest, memory: this.config.memoryRequest, [GPU]: gpus },
                  limits: { memory: this.config.memoryLimit, [GPU]: gpus },
                },
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
                volumeMounts: [
                  { name: 'model-cache', mountPath: '/cache' },
                  { name: 'tmp', mountPath: '/tmp' },
                ],
              },
            ],
            volumes: [
              { name: 'model-cache', emptyDir: {} },
              { name: 'tmp', emptyDir: {} },
            ],
          },
        },
      },
    };
  }

  private async deployments(sweepId?: string): Promise<k8s.V1Deployment[]> {
    return (await this.apps.listNamespacedDeployment({ namespace: this.namespace, labelSelector: this.selector(sweepId) })).items;
  }

  async status(sweepId: string): Promise<PoolStatus> {
    const desired: Record<string, number> = {};
    const ready: Record<string, number> = {};
    let failure: string | null = null;
    for (const d of await this.deployments(sweepId)) {
      const g = d.metadata!.labels![LABELS.group]!;
      desired[g] = d.spec?.replicas ?? 0;
      ready[g] = d.status?.readyReplicas ?? 0;
      const cond = d.status?.conditions?.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
      if (cond) failure = cond.message ?? cond.reason ?? 'ReplicaFailure';
    }
    return { provider: 'kubernetes', desired, ready, shrunkBy: null, problem: failure };
  }

  async remove(sweepId: string): Promise<number> {
    let removed = 0;
    const ns = this.namespace;
    const gone = (err: unknown) => {
      if (httpCode(err) !== 404) throw err;
    };
    for (const d of await this.deployments(sweepId)) {
      await this.apps.deleteNamespacedDeployment({ name: d.metadata!.name!, namespace: ns, propagationPolicy: 'Background' }).catch(gone);
      removed += 1;
    }
    await this.core
      .deleteNamespacedConfigMap({ name: anchorName(sweepId), namespace: ns, propagationPolicy: 'Background' })
      .then(() => (removed += 1))
      .catch(gone);
    // the garbage collector removes ReplicaSets, then their pods; wait until none is left
    const selector = this.selector(sweepId);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const [deps, sets, pods] = await Promise.all([
        this.apps.listNamespacedDeployment({ namespace: ns, labelSelector: selector }),
        this.apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: selector }),
        this.core.listNamespacedPod({ namespace: ns, labelSelector: selector }),
      ]);
      const left = deps.items.length + sets.items.length + pods.items.length;
      if (left === 0) return removed;
      // anything left without a pending deletion (a crash mid-create) is deleted here
      const orphaned = (x: { metadata?: k8s.V1ObjectMeta }) => !x.metadata?.deletionTimestamp && !x.metadata?.ownerReferences?.length;
      for (const rs of sets.items.filter(orphaned)) {
        await this.apps.deleteNamespacedReplicaSet({ name: rs.metadata!.name!, namespace: ns, propagationPolicy: 'Background' }).catch(gone);
      }
      for (const pod of pods.items.filter(orphaned)) {
        await this.core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace: ns }).catch(gone);
      }
      if (Date.now() > deadline) {
        throw new Error(`the pool of sweep ${sweepId} still has ${left} objects in ${ns} after 120 s (label ${selector})`);
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  async list(): Promise<PoolObjectRef[]> {
    const anchors = await this.core.listNamespacedConfigMap({ namespace: this.namespace, labelSelector: this.selector() });
    const refs = new Map<string, PoolObjectRef>();
    for (const cm of anchors.items) {
      const a = cm.metadata?.annotations ?? {};
      if (a[ANNOTATIONS.sweepId] && a[ANNOTATIONS.workflowId])
        refs.set(a[ANNOTATIONS.sweepId]!, { sweepId: a[ANNOTATIONS.sweepId]!, workflowId: a[ANNOTATIONS.workflowId]! });
    }
    // Deployments whose anchor is gone (deleted by hand) still belong to a sweep
    for (const d of await this.deployments()) {
      const a = d.metadata?.annotations ?? {};
      if (a[ANNOTATIONS.sweepId] && a[ANNOTATIONS.workflowId] && !refs.has(a[ANNOTATIONS.sweepId]!)) {
        refs.set(a[ANNOTATIONS.sweepId]!, { sweepId: a[ANNOTATIONS.sweepId]!, workflowId: a[ANNOTATIONS.workflowId]! });
      }
    }
    return [...refs.values()];
  }
}
