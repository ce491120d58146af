// The k8s/ manifests, rendered the way kustomize would (base, dev, cluster) by a deliberately small
// renderer that lives only here: resources, strategic-merge patches matched by kind and name (lists
// of named items merge by name, as containers and env do), images and namespace. Every object is
// then checked against the Kubernetes 1.33 schema (kubernetes-models) and against our own rules:
// GPUs only on the inference worker, honest probes, grace longer than a heartbeat, images mapped.
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/Role';
import type { IRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { ISecret } from 'kubernetes-models/v1/Secret';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../workers/lib/paths';
import { validateObject } from '../helpers/k8s-models';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };
interface ImageEntry {
  name: string;
  newName?: string;
  newTag?: string;
}
interface Rendered {
  objects: Obj[];
  /** image names the manifests use, before any `images:` rewrite */
  rawImages: Set<string>;
  /** every `images:` entry name seen in this kustomization and the ones it includes */
  imageEntries: Set<string>;
}

const K8S = join(repoRoot, 'k8s');
const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

function readYamlDocs(path: string): Obj[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((doc) => {
    if (doc.errors.length) throw new Error(`${path}: ${doc.errors[0]!.message}`);
    return doc.toJS() as Obj;
  });
}

/** Strategic merge as far as these manifests need it: maps merge, lists of named maps merge by name. */
function strategicMerge(base: unknown, patch: unknown): unknown {
  if (isRecord(base) && isRecord(patch)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(patch)) out[k] = k in base ? strategicMerge(base[k], v) : v;
    return out;
  }
  const named = (xs: unknown) => Array.isArray(xs) && xs.every((x) => isRecord(x) && typeof x.name === 'string');
  if (named(base) && named(patch)) {
    const out = [...(base as Array<Record<string, unknown>>)];
    for (const item of patch as Array<Record<string, unknown>>) {
      const i = out.findIndex((b) => b.name === item.name);
      if (i >= 0) out[i] = strategicMerge(out[i], item) as Record<string, unknown>;
      else out.push(item);
    }
    return out;
  }
  return patch;
}

function podContainers(obj: Obj): Array<{ image?: string }> {
  const spec = (obj.spec as { template?: { spec?: { containers?: unknown[]; initContainers?: unknown[] } } } | undefined)?.template?.spec;
  return [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])] as Array<{ image?: string }>;
}

const imageName = (image: string) => image.split('@')[0]!.replace(/:[^/:]+$/, '');

function render(dir: string): Rendered {
  const k = readYamlDocs(join(dir, 'kustomization.yaml'))[0] as unknown as {
    namespace?: string;
    resources?: string[];
    patches?: Array<{ path?: string; target?: unknown }>;
    images?: ImageEntry[];
  };
  const known = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'patches', 'images']);
  for (const field of Object.keys(k)) assert.ok(known.has(field), `${dir}: the test renderer does not support "${field}"`);

  const out: Rendered = { objects: [], rawImages: new Set(), imageEntries: new Set() };
  for (const r of k.resources ?? []) {
    const path = resolve(dir, r);
    if (statSync(path).isDirectory()) {
      const sub = render(path);
      out.objects.push(...sub.objects);
      sub.rawImages.forEach((i) => out.rawImages.add(i));
      sub.imageEntries.forEach((i) => out.imageEntries.add(i));
    } else {
      for (const obj of readYamlDocs(path)) {
        podContainers(obj).forEach((c) => c.image && out.rawImages.add(imageName(c.image)));
        out.objects.push(obj);
      }
    }
  }
  for (const p of k.patches ?? []) {
    assert.ok(p.path && !p.target, `${dir}: only path patches matched by kind/name are supported`);
    for (const patch of readYamlDocs(join(dir, p.path))) {
      const i = out.objects.findIndex((o) => o.kind === patch.kind && o.metadata.name === patch.metadata.name);
      assert.ok(i >= 0, `${dir}/${p.path}: no ${patch.kind} "${patch.metadata.name}" to patch`);
      out.objects[i] = strategicMerge(out.objects[i], patch) as Obj;
    }
  }
  for (const entry of k.images ?? []) {
    out.imageEntries.add(entry.name);
    for (const obj of out.objects) {
      for (const c of podContainers(obj)) {
        if (!c.image || imageName(c.image) !== entry.name) continue;
        const tag = entry.newTag ?? /:([^/:]+)$/.exec(c.image)?.[1];
        c.image = `${entry.newName ?? entry.name}${tag ? `:${tag}` : ''}`;
      }
    }
  }
  if (k.namespace) {
    for (const obj of out.objects) if (obj.kind !== 'Namespace') obj.metadata = { ...obj.metadata, namespace: k.namespace };
  }
  return out;
}

const validate = (obj: Obj) => validateObject(obj);

const TARGETS = { base: join(K8S, 'base'), dev: join(K8S, 'overlays', 'dev'), cluster: join(K8S, 'overlays', 'cluster') };
const rendered = Object.fromEntries(Object.entries(TARGETS).map(([name, dir]) => [name, render(dir)])) as Record<keyof typeof TARGETS, Rendered>;

const deployments = (r: Rendered) => r.objects.filter((o) => o.kind === 'Deployment') as unknown as IDeployment[];
const deployment = (r: Rendered, name: string) => {
  const d = deployments(r).find((o) => o.metadata?.name === name);
  assert.ok(d, `no Deployment ${name}`);
  return d;
};
const gpuLimit = (d: IDeployment) => d.spec!.template.spec!.containers.map((c) => c.resources?.limits?.['nvidia.com/gpu']);

for (const [target, r] of Object.entries(rendered)) {
  describe(`k8s ${target}`, () => {
    it('renders only objects that pass the Kubernetes schema, each once', () => {
      assert.ok(r.objects.length >= 5);
      for (const obj of r.objects) validate(obj);
      const ids = r.objects.map((o) => `${o.kind}/${o.metadata.name}`);
      assert.equal(new Set(ids).size, ids.length, `duplicates in ${ids.join(', ')}`);
    });

    it('puts every namespaced object in the twice namespace, which it creates', () => {
      assert.ok(r.objects.some((o) => o.kind === 'Namespace' && o.metadata.name === 'twice'));
      for (const o of r.objects.filter((x) => x.kind !== 'Namespace')) {
        assert.equal(o.metadata.namespace, 'twice', `${o.kind}/${o.metadata.name}`);
      }
    });

    it('maps every image through a kustomize images entry, to a tagged reference', () => {
      assert.deepEqual([...r.rawImages].sort(), ['twice-inference', 'twice-orchestrator']);
      for (const name of r.rawImages) assert.ok(r.imageEntries.has(name), `image ${name} has no images: entry`);
      for (const d of deployments(r)) {
        for (const c of d.spec!.template.spec!.containers) assert.match(c.image!, /^[^:]+:[\w.-]+$/, `${c.name}: ${c.image}`);
      }
    });

    it('asks for a GPU on the inference worker only, in limits, and schedules it onto GPU nodes', () => {
      const inference = deployment(r, 'twice-inference');
      assert.deepEqual(gpuLimit(inference).map(Number), [1]);
      const c = inference.spec!.template.spec!.containers[0]!;
      const requested = c.resources?.requests?.['nvidia.com/gpu'];
      assert.ok(requested === undefined || Number(requested) === 1, 'GPU requests, if given, must equal limits');
      const pod = inference.spec!.template.spec!;
      assert.equal(pod.nodeSelector?.['nvidia.com/gpu.present'], 'true');
      assert.ok(pod.tolerations?.some((t) => t.key === 'nvidia.com/gpu' && t.operator === 'Exists' && t.effect === 'NoSchedule'));
      for (const d of deployments(r).filter((x) => x.metadata!.name !== 'twice-inference')) {
        assert.deepEqual(
          gpuLimit(d),
          d.spec!.template.spec!.containers.map(() => undefined),
          d.metadata!.name,
        );
        assert.equal(d.spec!.template.spec!.tolerations, undefined);
      }
    });

    it('runs the inference worker as the brief says, with a grace period longer than a heartbeat', () => {
      const pod = deployment(r, 'twice-inference').spec!.template.spec!;
      const c = pod.containers[0]!;
      assert.deepEqual([...(c.command ?? []), ...(c.args ?? [])].slice(0, 9), [
        'python',
        '-m',
        'twice_inference.worker',
        '--address',
        '$(TEMPORAL_ADDRESS)',
        '--namespace',
        '$(TEMPORAL_NAMESPACE)',
        '--task-queue',
        'twice-gpu',
      ]);
      const args = c.args ?? [];
      assert.equal(args[args.indexOf('--device') + 1], 'cuda');
      const graceful = Number(args[args.indexOf('--graceful-shutdown-seconds') + 1]);
      const heartbeatTimeoutSeconds = 120; // the sweep spec's default (workflows/sweep-spec.ts)
      assert.ok(graceful >= heartbeatTimeoutSeconds, `graceful shutdown ${graceful}s`);
      assert.ok(pod.terminationGracePeriodSeconds! > graceful, 'the kubelet must not SIGKILL before the worker lets go');
    });

    it('has sane restart and probe settings: no invented HTTP endpoints, no liveness kills mid-shard', () => {
      for (const d of deployments(r)) {
        const pod = d.spec!.template.spec!;
        assert.ok(pod.restartPolicy === undefined || pod.restartPolicy === 'Always', d.metadata!.name);
        assert.deepEqual(d.spec!.selector.matchLabels, { 'app.kubernetes.io/name': d.metadata!.name });
        assert.equal(d.spec!.template.metadata!.labels!['app.kubernetes.io/name'], d.metadata!.name);
        for (const c of pod.containers) {
          const serves = (c.ports ?? []).map((p) => p.name);
          for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
            assert.ok(!probe?.httpGet && !probe?.grpc, `${c.name}: no process here has a health endpoint`);
            // only a container that declares its port may be probed on it (web, Slack)
            if (probe?.tcpSocket) assert.ok(serves.includes(String(probe.tcpSocket.port)), `${c.name}: probes a port it does not declare`);
          }
          assert.equal(c.livenessProbe, undefined, c.name);
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, c.name);
        }
      }
      const probe = deployment(r, 'twice-inference').spec!.template.spec!.containers[0]!.readinessProbe;
      assert.deepEqual(probe?.exec?.command?.slice(0, 2), ['python', '-c']);
      assert.match(probe!.exec!.command![2]!, /torch\.cuda\.is_available\(\)/);
      assert.ok(probe!.timeoutSeconds! < probe!.periodSeconds!);
    });

    it('resolves every $(VAR), ConfigMap key and Secret key a container references', () => {
      const configMaps = r.objects.filter((o) => o.kind === 'ConfigMap') as unknown as IConfigMap[];
      const secrets = r.objects.filter((o) => o.kind === 'Secret') as unknown as ISecret[];
      for (const d of deployments(r)) {
        for (const c of d.spec!.template.spec!.containers) {
          const env = c.env ?? [];
          const defined = new Set(env.map((e) => e.name));
          for (const ref of [...(c.command ?? []), ...(c.args ?? [])].flatMap((a) => [...a.matchAll(/\$\((\w+)\)/g)].map((m) => m[1]!))) {
            assert.ok(defined.has(ref), `${c.name}: $(${ref}) is not in env`);
          }
          for (const e of env) {
            const cm = e.valueFrom?.configMapKeyRef;
            if (cm) assert.ok(configMaps.find((x) => x.metadata!.name === cm.name)?.data?.[cm.key], `${c.name}: ${cm.name}/${cm.key}`);
            const sk = e.valueFrom?.secretKeyRef;
            if (sk) assert.ok(secrets.find((x) => x.metadata!.name === sk.name)?.stringData?.[sk.key], `${c.name}: ${sk.name}/${sk.key}`);
          }
        }
      }
      const orchestrator = deployment(r, 'twice-orchestrator').spec!.template.spec!.containers[0]!;
      assert.deepEqual(orchestrator.command, ['node_modules/.bin/tsx', 'workers/orchestrator.ts']);
      assert.equal(orchestrator.env!.find((e) => e.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef?.name, 'twice-db');
      assert.equal(orchestrator.env!.find((e) => e.name === 'TEMPORAL_ADDRESS')?.valueFrom?.configMapKeyRef?.name, 'twice-config');
    });

    it('ships Secret templates with placeholders, never a credential', () => {
      const secrets = r.objects.filter((o) => o.kind === 'Secret') as unknown as ISecret[];
      assert.deepEqual(secrets.map((s) => s.metadata!.name).sort(), ['twice-db', 'twice-slack']);
      assert.deepEqual(Object.keys(secrets.find((s) => s.metadata!.name === 'twice-db')!.stringData ?? {}), ['DATABASE_URL']);
      for (const secret of secrets) {
        for (const [key, value] of Object.entries(secret.stringData ?? {})) assert.match(value, /REPLACE_ME/, `${secret.metadata!.name}/${key}`);
        assert.equal(secret.data, undefined);
      }
    });

    it('gives the orchestrator a ServiceAccount with least privilege over its pool, and no one else a token', () => {
      const role = r.objects.find((o) => o.kind === 'Role') as unknown as IRole;
      const binding = r.objects.find((o) => o.kind === 'RoleBinding') as unknown as IRoleBinding;
      assert.equal(
        r.objects.some((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding'),
        false,
      );
      assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata!.name });
      assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'twice-orchestrator' }]);
      const granted = role.rules!.flatMap((rule) => rule.resources!.map((res) => `${rule.apiGroups![0] || 'core'}/${res}`)).sort();
      assert.deepEqual(granted, ['apps/deployments', 'apps/replicasets', 'core/configmaps', 'core/pods', 'core/resourcequotas']);
      for (const rule of role.rules!) {
        assert.ok(!rule.verbs.includes('*') && !rule.resources!.includes('*') && !rule.resources!.includes('secrets'), JSON.stringify(rule));
      }
      assert.equal(deployment(r, 'twice-orchestrator').spec!.template.spec!.serviceAccountName, 'twice-orchestrator');
      for (const d of deployments(r).filter((x) => x.metadata!.name !== 'twice-orchestrator')) {
        assert.equal(d.spec!.template.spec!.automountServiceAccountToken, false, d.metadata!.name);
      }
    });

    it('denies all traffic by default and opens each process only the ports it uses', () => {
      const policies = r.objects.filter((o) => o.kind === 'NetworkPolicy') as unknown as INetworkPolicy[];
      const deny = policies.find((p) => p.metadata!.name === 'twice-default-deny')!;
      assert.deepEqual(deny.spec!.podSelector, {});
      assert.deepEqual(deny.spec!.policyTypes, ['Ingress', 'Egress']);
      assert.equal(deny.spec!.ingress, undefined);
      assert.equal(deny.spec!.egress, undefined);
      const egressPorts = (name: string) => policies.find((p) => p.metadata!.name === name)!.spec!.egress!.flatMap((e) => e.ports!.map((p) => p.port));
      assert.deepEqual(egressPorts('twice-inference'), [7233]);
      assert.ok(!egressPorts('twice-inference').includes(5432), 'GPU workers never reach the database');
      for (const d of deployments(r)) {
        const name = d.metadata!.name!;
        const covered = policies.some(
          (p) =>
            p.spec!.podSelector.matchLabels?.['app.kubernetes.io/name'] === name || p.spec!.podSelector.matchExpressions?.some((e) => e.values?.includes(name)),
        );
        assert.ok(covered, `${name} has no NetworkPolicy of its own`);
        for (const c of d.spec!.template.spec!.containers) {
          for (const port of c.ports ?? []) {
            const ingress = policies.filter((p) => p.spec!.podSelector.matchLabels?.['app.kubernetes.io/name'] === name).flatMap((p) => p.spec!.ingress ?? []);
            assert.ok(
              ingress.some((i) => i.ports?.some((p) => p.port === port.containerPort)),
              `${name}: port ${port.containerPort} is not let in`,
            );
          }
        }
      }
    });

    it('points the orchestrator pools at the same inference image the overlay deploys', () => {
      const config = r.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'twice-config') as unknown as IConfigMap;
      const inference = deployment(r, 'twice-inference').spec!.template.spec!.containers[0]!.image;
      assert.equal(config.data!.TWICE_POOL_IMAGE, inference);
      assert.equal(config.data!.TWICE_POOL_PROVIDER, 'kubernetes');
    });
  });
}

describe('k8s overlays', () => {
  it('dev: one small GPU worker, the base command and image kept through the patch', () => {
    const inference = deployment(rendered.dev, 'twice-inference');
    assert.equal(inference.spec!.replicas, 1);
    const c = inference.spec!.template.spec!.containers[0]!;
    assert.equal(c.resources!.requests!.memory, '4Gi');
    assert.equal(c.image, 'twice-inference:dev');
    assert.deepEqual(c.args, deployment(rendered.base, 'twice-inference').spec!.template.spec!.containers[0]!.args);
    assert.equal(
      rendered.dev.objects.some((o) => o.kind === 'PodDisruptionBudget'),
      false,
    );
  });

  it('cluster: eight GPU workers from the registry, with disruption budgets over real selectors', () => {
    const inference = deployment(rendered.cluster, 'twice-inference');
    assert.equal(inference.spec!.replicas, 8);
    assert.equal(inference.spec!.template.spec!.containers[0]!.image, 'registry.example.com/twice/inference:0.1.0');
    assert.equal(deployment(rendered.cluster, 'twice-orchestrator').spec!.replicas, 2);
    const pdbs = rendered.cluster.objects.filter((o) => o.kind === 'PodDisruptionBudget') as unknown as IPodDisruptionBudget[];
    assert.deepEqual(pdbs.map((p) => p.metadata!.name).sort(), ['twice-inference', 'twice-orchestrator']);
    for (const pdb of pdbs) {
      const target = deployment(rendered.cluster, pdb.metadata!.name!);
      assert.deepEqual(pdb.spec!.selector!.matchLabels, target.spec!.selector.matchLabels);
    }
    assert.equal(pdbs.find((p) => p.metadata!.name === 'twice-inference')!.spec!.maxUnavailable, 1);
  });

  it('the test renderer merges named lists by name and refuses patches it cannot place', () => {
    const merged = strategicMerge(
      {
        containers: [
          { name: 'a', image: 'x', args: ['1'] },
          { name: 'b', image: 'y' },
        ],
      },
      {
        containers: [
          { name: 'b', image: 'z' },
          { name: 'c', image: 'w' },
        ],
      },
    );
    assert.deepEqual(merged, {
      containers: [
        { name: 'a', image: 'x', args: ['1'] },
        { name: 'b', image: 'z' },
        { name: 'c', image: 'w' },
      ],
    });
    assert.deepEqual(strategicMerge({ args: ['1', '2'] }, { args: ['3'] }), { args: ['3'] });
  });

  it('kubernetes-models catches the structural mistakes it is here for', () => {
    const bad = structuredClone(deployment(rendered.base, 'twice-inference')) as IDeployment;
    bad.spec!.template.spec!.containers[0]!.resources!.limits!['nvidia.com/gpu'] = 'lots';
    assert.throws(() => validate(bad as unknown as Obj));
    const noTemplate = structuredClone(deployment(rendered.base, 'twice-orchestrator')) as unknown as Obj;
    delete (noTemplate.spec as Record<string, unknown>).template;
    assert.throws(() => validate(noTemplate));
  });
});
