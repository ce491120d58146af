// A real Kubernetes control plane for tests: etcd, kube-apiserver (RBAC authorizer),
// kube-controller-manager (garbage collector, Deployment/ReplicaSet controllers, quota),
// kube-scheduler and KWOK, whose fake nodes advertise `nvidia.com/gpu` and move scheduled pods to
// Running. Everything listens on free loopback ports with its own PKI in a temporary directory;
// stop() ends exactly the processes start() spawned, by PID, newest first, and removes the folder.
// The binaries come from scripts/k8s-toolchain.mjs (built once by the bootstrap).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { LABELS, sweepLabel } from '../../activities/pool-kubernetes';
import { readToolchain } from '../../workers/lib/paths';
import { freePort } from '../../workers/lib/stack';

export interface ControlPlane {
  server: string;
  /** admin (system:masters) kubeconfig file, for kubectl */
  kubeconfigPath: string;
  /** an admin client configuration */
  kubeConfig: k8s.KubeConfig;
  caData: string;
  binDir: string;
  kubectl(args: string[]): { status: number; stdout: string; stderr: string };
  /** a client configuration that authenticates with a bearer token (a ServiceAccount's) */
  tokenConfig(token: string): k8s.KubeConfig;
  /** fake GPU nodes KWOK manages: `gpus` nvidia.com/gpu each, labelled as the manifests expect */
  addGpuNodes(count: number, gpus: number, labels?: Record<string, string>): Promise<string[]>;
  stop(): Promise<void>;
}

/** Why the Kubernetes tests cannot run here, or null when the binaries are built. */
export function controlPlaneUnavailable(): string | null {
  const { k8s: bin } = readToolchain();
  if (!bin) return 'no Kubernetes control plane in this run (TWICE_SKIP_K8S=1 or no Go): `npm test` builds it once with Go and runs these tests';
  return null;
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** CA, apiserver serving cert for 127.0.0.1, admin client cert (system:masters), SA key pair. */
function makePki(dir: string): void {
  mkdirSync(dir, { recursive: true });
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-subj', '/CN=twice-test-ca', '-days', '2', '-out', 'ca.crt']);
  const sign = (name: string, subject: string, ext: string) => {
    openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-subj', subject, '-out', `${name}.csr`]);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    ]);
  };
  sign('apiserver', '/CN=kube-apiserver', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  sign('admin', '/O=system:masters/CN=twice-test-admin', 'extendedKeyUsage=clientAuth\n');
  openssl(dir, ['genrsa', '-out', 'sa.key', '2048']);
  openssl(dir, ['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

export async function startControlPlane(): Promise<ControlPlane> {
  const { k8s: binDir } = readToolchain();
  if (!binDir) throw new Error(controlPlaneUnavailable()!);
  const dir = mkdtempSync(join(tmpdir(), 'twice-k8s-'));
  const pki = join(dir, 'pki');
  makePki(pki);
  const [apiPort, etcdPort, peerPort] = [await freePort(), await freePort(), await freePort()];
  const server = `https://127.0.0.1:${apiPort}`;
  const kubeconfigPath = join(pki, 'admin.kubeconfig');
  writeFileSync(
    kubeconfigPath,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters: [{name: test, cluster: {server: "${server}", certificate-authority: ${pki}/ca.crt}}]`,
      `users: [{name: admin, user: {client-certificate: ${pki}/admin.crt, client-key: ${pki}/admin.key}}]`,
      'contexts: [{name: test, context: {cluster: test, user: admin}}]',
      'current-context: test',
      '',
    ].join('\n'),
  );
  const children: Array<{ name: string; proc: ChildProcess }> = [];
  const logs = join(dir, 'logs');
  mkdirSync(logs);
  const start = (name: string, args: string[]) => {
    const out = createWriteStream(join(logs, `${name}.log`));
    const proc = spawn(join(binDir, name), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.pipe(out);
    proc.stderr!.pipe(out);
    children.push({ name, proc });
  };
  const stop = async () => {
    for (const { proc } of [...children].reverse()) {
      if (proc.exitCode !== null || proc.signalCode !== null) continue;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const killed = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
      if (!killed) {
        proc.kill('SIGKILL');
        await exited;
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const etcd = `http://127.0.0.1:${etcdPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    start('etcd', [
      '--name',
      'twice-test',
      '--data-dir',
      join(dir, 'etcd'),
      '--listen-metrics-urls=',
      '--listen-client-urls',
      etcd,
      '--advertise-client-urls',
      etcd,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `twice-test=${peer}`,
    ]);
    start('kube-apiserver', [
      `--etcd-servers=${etcd}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${pki}/apiserver.crt`,
      `--tls-private-key-file=${pki}/apiserver.key`,
      `--client-ca-file=${pki}/ca.crt`,
      '--authorization-mode=Node,RBAC',
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${pki}/sa.pub`,
      `--service-account-signing-key-file=${pki}/sa.key`,
      '--service-cluster-ip-range=10.96.0.0/16',
      // the apiserver would otherwise publish a non-loopback endpoint for the kubernetes Service
      '--endpoint-reconciler-type=none',
    ]);
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        await core.listNamespace();
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`kube-apiserver did not answer within 120 s: ${String(err)}`);
        await sleep(250);
      }
    }
    const common = [
      `--kubeconfig=${kubeconfigPath}`,
      `--authentication-kubeconfig=${kubeconfigPath}`,
      `--authorization-kubeconfig=${kubeconfigPath}`,
      '--bind-address=127.0.0.1',
      '--secure-port=0',
      '--leader-elect=false',
    ];
    start('kube-controller-manager', [
      ...common,
      `--service-account-private-key-file=${pki}/sa.key`,
      `--root-ca-file=${pki}/ca.crt`,
      '--use-service-account-credentials=true',
    ]);
    start('kube-scheduler', common);
    start('kwok', [
      `--kubeconfig=${kubeconfigPath}`,
      `--config=${join(binDir, 'kwok-stages.yaml')}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--node-ip=127.0.0.1',
      '--cidr=10.244.0.1/24',
    ]);
    const caData = readFileSync(join(pki, 'ca.crt'), 'utf8');
    let nodes = 0;
    return {
      server,
      kubeconfigPath,
      kubeConfig,
      caData,
      binDir,
      kubectl(args) {
        const r = spawnSync(join(binDir, 'kubectl'), [`--kubeconfig=${kubeconfigPath}`, ...args], { encoding: 'utf8' });
        return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
      },
      tokenConfig(token) {
        const kc = new k8s.KubeConfig();
        kc.loadFromOptions({
          clusters: [{ name: 'test', server, caData: Buffer.from(caData).toString('base64') }],
          users: [{ name: 'sa', token }],
          contexts: [{ name: 'test', cluster: 'test', user: 'sa' }],
          currentContext: 'test',
        });
        return kc;
      },
      async addGpuNodes(count, gpus, labels = {}) {
        const names: string[] = [];
        for (let i = 0; i < count; i++) {
          const name = `kwok-gpu-${nodes++}`;
          const capacity = { cpu: '32', memory: '256Gi', pods: '110', 'nvidia.com/gpu': String(gpus) };
          await core.createNode({
            body: {
              metadata: {
                name,
                annotations: { 'kwok.x-k8s.io/node': 'fake' },
                labels: { 'kubernetes.io/hostname': name, type: 'kwok', 'nvidia.com/gpu.present': 'true', ...labels },
              },
              spec: { taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }] },
              // KWOK keeps what the node says it has; the scheduler fits GPU requests against it
              status: { capacity, allocatable: capacity },
            },
          });
          names.push(name);
        }
        return names;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Polls until `probe` returns something other than undefined/false; errors count as "not yet". */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(200);
  }
}

/** Names of every object labelled with the sweep's pool label: what a removed pool must not leave. */
export async function poolLeftovers(kubeConfig: k8s.KubeConfig, namespace: string, sweepId: string): Promise<string[]> {
  const labelSelector = `${LABELS.sweep}=${sweepLabel(sweepId)}`;
  const core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  const apps = kubeConfig.makeApiClient(k8s.AppsV1Api);
  const lists = await Promise.all([
    apps.listNamespacedDeployment({ namespace, labelSelector }),
    apps.listNamespacedReplicaSet({ namespace, labelSelector }),
    core.listNamespacedPod({ namespace, labelSelector }),
    core.listNamespacedConfigMap({ namespace, labelSelector }),
  ]);
  return lists.flatMap((l) => l.items.map((o: { metadata?: k8s.V1ObjectMeta }) => o.metadata!.name!));
}
