// The kubernetes pool provider against a real control plane (etcd, kube-apiserver with RBAC,
// controller-manager, scheduler) with KWOK GPU nodes: pods are really scheduled onto nodes by
// their nvidia.com/gpu requests, ReplicaSets and garbage collection are the real controllers,
// 403s come from the real authorizer and quota from the real admission plugin.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { KubernetesPool, LABELS, sweepLabel } from '../../activities/pool-kubernetes';
import { POOL_DEFAULTS, poolGroups, type PoolPlan, type PoolSettings } from '../../workflows/pool';
import { repoRoot } from '../../workers/lib/paths';
import { controlPlaneUnavailable, poolLeftovers, startControlPlane, waitFor, type ControlPlane } from '../helpers/control-plane';
import { validateObject } from '../helpers/k8s-models';

const skip = controlPlaneUnavailable() ?? undefined;
const NS = 'twice';
const POOL_CONFIG = { image: 'twice-inference:test', temporalAddress: '127.0.0.1:7233', temporalNamespace: 'default' };

function plan(sweepId: string, models: string[], replicas: number[], settings: Partial<PoolSettings> = {}): PoolPlan {
  const s = { ...POOL_DEFAULTS, ...settings };
  const groups = poolGroups(sweepId, models, s);
  return { sweepId, groups, settings: s, replicas: Object.fromEntries(groups.map((g, i) => [g.id, replicas[i] ?? 0])) };
}

describe('kubernetes GPU pools on a real control plane', { skip }, () => {
  let cp: ControlPlane;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;

  const leftovers = (namespace: string, sweepId: string) => poolLeftovers(cp.kubeConfig, namespace, sweepId);
  const runningPods = async (namespace: string, sweepId: string) =>
    (await core.listNamespacedPod({ namespace, labelSelector: `${LABELS.sweep}=${sweepLabel(sweepId)}` })).items.filter(
      (p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp,
    );

  before(async () => {
    cp = await startControlPlane();
    core = cp.kubeConfig.makeApiClient(k8s.CoreV1Api);
    apps = cp.kubeConfig.makeApiClient(k8s.AppsV1Api);
    await cp.addGpuNodes(2, 8);
    await cp.addGpuNodes(1, 8, { 'nvidia.com/gpu.product': 'NVIDIA-H200' });
    for (const name of [NS, 'twice-quota', 'elsewhere']) await core.createNamespace({ body: { metadata: { name } } });
  });

  after(async () => {
    await cp?.stop();
  });

  it('creates a pool whose pods run on GPU nodes, scales it as models finish, and deletes everything', async () => {
    const pool = new KubernetesPool(cp.kubeConfig, { namespace: NS, ...POOL_CONFIG });
    const sweepId = 'lifecycle-20261128-000000-aaaa';
    const status = await pool.apply(plan(sweepId, ['zoo-a', 'zoo-b'], [3, 2], { gpusPerPod: 2 }), `sweep/${sweepId}`);
    assert.deepEqual(status.desired, { g0: 3, g1: 2 });
    const pods = await waitFor('5 Running pool pods', async () => {
      const r = await runningPods(NS, sweepId);
      return r.length === 5 && r;
    });
    for (const p of pods) {
      assert.match(p.spec!.nodeName!, /^kwok-gpu-/);
      assert.equal(p.spec!.containers[0]!.resources!.limits!['nvidia.com/gpu'], '2');
      const args = p.spec!.containers[0]!.args!;
      assert.equal(args[args.indexOf('--task-queue') + 1], `twice-gpu.${sweepId}.${p.metadata!.labels![LABELS.group]}`);
    }
    const ready = await waitFor('readiness', async () => {
      const s = await pool.status(sweepId);
      return s.ready.g0 === 3 && s.ready.g1 === 2 && s;
    });
    assert.equal(ready.provider, 'kubernetes');
    // every pod is owned through its ReplicaSet by a Deployment owned by the sweep's anchor
    const deployments = (await apps.listNamespacedDeployment({ namespace: NS, labelSelector: `${LABELS.sweep}=${sweepLabel(sweepId)}` })).items;
    for (const d of deployments) {
      assert.deepEqual(
        d.metadata!.ownerReferences!.map((o) => o.kind),
        ['ConfigMap'],
      );
      validateObject({ apiVersion: 'apps/v1', kind: 'Deployment', ...JSON.parse(JSON.stringify(d)) });
    }
    assert.deepEqual(await pool.list(), [{ sweepId, workflowId: `sweep/${sweepId}` }]);

    // model zoo-a is done: its group goes to zero, zoo-b keeps its pods
    await pool.apply(plan(sweepId, ['zoo-a', 'zoo-b'], [0, 2], { gpusPerPod: 2 }), `sweep/${sweepId}`);
    await waitFor('g0 scaled to zero', async () => {
      const r = await runningPods(NS, sweepId);
      return r.length === 2 && r.every((p) => p.metadata!.labels![LABELS.group] === 'g1');
    });

    const removed = await pool.remove(sweepId);
    assert.equal(removed, 3, 'two Deployments and the anchor');
    assert.deepEqual(await leftovers(NS, sweepId), []);
    assert.deepEqual(await pool.list(), []);
  });

  it('honours the GPU type and node selector, and pods that fit nowhere stay Pending', async () => {
    const pool = new KubernetesPool(cp.kubeConfig, { namespace: NS, ...POOL_CONFIG });
    const sweepId = 'placement-20261128-000000-bbbb';
    await pool.apply(plan(sweepId, ['zoo-a', 'zoo-b'], [2, 1], { gpuType: 'NVIDIA-H200' }), `sweep/${sweepId}`);
    const pods = await waitFor('2 Running H200 pods', async () => {
      const r = await runningPods(NS, sweepId);
      return r.length === 3 && r;
    });
    assert.deepEqual([...new Set(pods.map((p) => p.spec!.nodeName))], ['kwok-gpu-2']);
    const huge = 'placement-20261128-000000-cccc';
    await pool.apply(plan(huge, ['zoo-a'], [1], { gpusPerPod: 9 }), `sweep/${huge}`);
    const pending = await waitFor('an unschedulable pod', async () => {
      const [p] = (await core.listNamespacedPod({ namespace: NS, labelSelector: `${LABELS.sweep}=${sweepLabel(huge)}` })).items;
      return p?.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    });
    assert.match(pending.message!, /Insufficient nvidia\.com\/gpu/);
    await pool.remove(sweepId);
    await pool.remove(huge);
    assert.deepEqual([...(await leftovers(NS, sweepId)), ...(await leftovers(NS, huge))], []);
  });

  it('works with the orchestrator ServiceAccount of k8s/base/rbac.yaml, which gets 403 for anything else', async () => {
    const applied = cp.kubectl(['apply', '-n', NS, '-f', join(repoRoot, 'k8s', 'base', 'rbac.yaml')]);
    assert.equal(applied.status, 0, applied.stderr);
    const token = await waitFor('a ServiceAccount token', async () => {
      const r = await core.createNamespacedServiceAccountToken({
        name: 'twice-orchestrator',
        namespace: NS,
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      });
      return r.status?.token;
    });
    const asOrchestrator = cp.tokenConfig(token);
    const pool = new KubernetesPool(asOrchestrator, { namespace: NS, ...POOL_CONFIG });
    const sweepId = 'rbac-20261128-000000-dddd';
    await pool.apply(plan(sweepId, ['zoo-a'], [2]), `sweep/${sweepId}`);
    await waitFor('2 Running pods created with the ServiceAccount', async () => (await runningPods(NS, sweepId)).length === 2);
    await pool.apply(plan(sweepId, ['zoo-a'], [1]), `sweep/${sweepId}`);
    await waitFor('scaled to 1', async () => (await runningPods(NS, sweepId)).length === 1);
    await pool.remove(sweepId);
    assert.deepEqual(await leftovers(NS, sweepId), []);

    const saCore = asOrchestrator.makeApiClient(k8s.CoreV1Api);
    const saApps = asOrchestrator.makeApiClient(k8s.AppsV1Api);
    const forbidden = async (what: string, call: () => Promise<unknown>) => {
      await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof k8s.ApiException, `${what}: ${String(err)}`);
        assert.equal(err.code, 403, what);
        return true;
      });
    };
    await forbidden('list Secrets', () => saCore.listNamespacedSecret({ namespace: NS }));
    await forbidden('read a Secret', () => saCore.readNamespacedSecret({ name: 'twice-db', namespace: NS }));
    await forbidden('list nodes', () => saCore.listNode());
    await forbidden('list pods in another namespace', () => saCore.listNamespacedPod({ namespace: 'elsewhere' }));
    await forbidden('create a Deployment in another namespace', () =>
      saApps.createNamespacedDeployment({
        namespace: 'elsewhere',
        body: {
          metadata: { name: 'x' },
          spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i' }] } } },
        },
      }),
    );
    await forbidden('create a Service', () =>
      saCore.createNamespacedService({ namespace: NS, body: { metadata: { name: 'x' }, spec: { ports: [{ port: 80 }] } } }),
    );
    await forbidden('edit its own Role', () =>
      asOrchestrator.makeApiClient(k8s.RbacAuthorizationV1Api).deleteNamespacedRole({ name: 'twice-orchestrator-pool', namespace: NS }),
    );
  });

  it('shrinks the pool to fit a ResourceQuota on nvidia.com/gpu, and fails cleanly when not one pod fits', async () => {
    const namespace = 'twice-quota';
    await core.createNamespacedResourceQuota({ namespace, body: { metadata: { name: 'gpu-budget' }, spec: { hard: { 'requests.nvidia.com/gpu': '3' } } } });
    await waitFor(
      'the quota controller to fill in status',
      async () => (await core.readNamespacedResourceQuota({ name: 'gpu-budget', namespace })).status?.hard,
    );
    const pool = new KubernetesPool(cp.kubeConfig, { namespace, ...POOL_CONFIG });
    const first = 'quota-20261128-000000-eeee';
    const status = await pool.apply(plan(first, ['zoo-a', 'zoo-b'], [3, 2]), `sweep/${first}`);
    assert.equal(status.shrunkBy, 'gpu-budget');
    assert.deepEqual(status.desired, { g0: 3, g1: 0 }, 'model-major: the later group gives way');
    await waitFor('3 Running pods', async () => (await runningPods(namespace, first)).length === 3);
    await waitFor(
      'the quota to count them',
      async () => (await core.readNamespacedResourceQuota({ name: 'gpu-budget', namespace })).status?.used?.['requests.nvidia.com/gpu'] === '3',
    );

    const second = 'quota-20261128-000000-ffff';
    await assert.rejects(pool.apply(plan(second, ['zoo-c'], [2]), `sweep/${second}`), (err: Error & { type?: string; nonRetryable?: boolean }) => {
      assert.equal(err.type, 'PoolQuotaExceeded');
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, /ResourceQuota gpu-budget in namespace twice-quota/);
      return true;
    });
    assert.deepEqual(await leftovers(namespace, second), [], 'nothing half-created stays');
    await pool.remove(first);
    assert.deepEqual(await leftovers(namespace, first), []);
  });

  it('every overlay renders with kubectl kustomize, validates, and passes a server-side dry run', async () => {
    for (const target of ['base', 'overlays/dev', 'overlays/cluster']) {
      const dir = join(repoRoot, 'k8s', target);
      const rendered = cp.kubectl(['kustomize', dir]);
      assert.equal(rendered.status, 0, rendered.stderr);
      const objects = parseAllDocuments(rendered.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
      assert.ok(objects.length >= 15, `${target}: ${objects.length} objects`);
      for (const o of objects) validateObject(o);
      const dry = cp.kubectl(['apply', '-k', dir, '--dry-run=server']);
      assert.equal(dry.status, 0, `${target}: ${dry.stderr}`);
      const accepted = dry.stdout
        .trim()
        .split('\n')
        .filter((l) => /\(server dry run\)$/.test(l));
      assert.equal(accepted.length, objects.length, dry.stdout);
    }
  });
});
