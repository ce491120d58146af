// Stands in for the kubelet of KWOK's fake GPU nodes: for every Running pod of a twice GPU pool it
// starts a local Python inference worker with the pod's own task queue and model cache arguments,
// and kills it (SIGKILL, like a lost node) as soon as the pod is deleted, evicted or terminating.
// A worker that exits while its pod is still Running is started again, as the kubelet restarts a
// Deployment's container. So the pool the orchestrator created on the real control plane really
// serves the sweep.
import * as k8s from '@kubernetes/client-node';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LABELS } from '../../activities/pool-kubernetes';
import { spawnPythonWorker, type PythonWorker } from '../../workers/lib/stack';

export interface PodWorkers {
  /** workers started so far, by pod name */
  started: string[];
  running(): number;
  /** the pod whose worker process has this pid (Temporal's worker identity is pid@host) */
  podOfPid(pid: number): string | undefined;
  /** each worker's pod, state and restarts, with the tail of its log: for a failing test's message */
  describe(logLines?: number): string;
  stop(): Promise<void>;
}

function argOf(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

export function startPodWorkers(opts: { kubeConfig: k8s.KubeConfig; namespace: string; temporalAddress: string; logDir: string }): PodWorkers {
  const core = opts.kubeConfig.makeApiClient(k8s.CoreV1Api);
  const workers = new Map<string, PythonWorker>();
  const podNames = new Map<number, string>();
  const restarts = new Map<string, number>();
  const logFiles = new Map<string, string>();
  const started: string[] = [];
  let stopped = false;
  const kill = async (w: PythonWorker) => {
    if (w.process.exitCode !== null || w.process.signalCode !== null) return;
    const exited = new Promise((r) => w.process.once('exit', r));
    w.process.kill('SIGKILL');
    await exited;
  };

  const sync = async () => {
    const pods = (await core.listNamespacedPod({ namespace: opts.namespace, labelSelector: `${LABELS.app}=twice-pool` })).items;
    const live = new Set<string>();
    for (const pod of pods) {
      const uid = pod.metadata!.uid!;
      if (pod.status?.phase !== 'Running' || pod.metadata?.deletionTimestamp) continue;
      live.add(uid);
      const running = workers.get(uid);
      const exited = running && (running.process.exitCode !== null || running.process.signalCode !== null);
      if (running && !exited) continue;
      const name = pod.metadata!.name!;
      const args = pod.spec!.containers[0]!.args ?? [];
      const logFile = join(opts.logDir, `pod-${name}.log`);
      const w = spawnPythonWorker({
        temporalAddress: opts.temporalAddress,
        namespace: 'default',
        device: 'cpu',
        logFile,
        taskQueue: argOf(args, '--task-queue')!,
        modelCache: Number(argOf(args, '--model-cache') ?? 1),
      });
      workers.set(uid, w);
      logFiles.set(uid, logFile);
      if (w.process.pid) podNames.set(w.process.pid, name);
      if (exited) restarts.set(uid, (restarts.get(uid) ?? 0) + 1);
      else started.push(name);
    }
    for (const [uid, w] of workers) {
      if (!live.has(uid)) {
        workers.delete(uid);
        await kill(w);
      }
    }
  };

  const loop = (async () => {
    while (!stopped) {
      // the API server may be briefly busy; the next round catches up
      await sync().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();

  return {
    started,
    running: () => workers.size,
    podOfPid: (pid) => podNames.get(pid),
    describe(logLines = 8) {
      return [...workers.entries()]
        .map(([uid, w]) => {
          const name = podNames.get(w.process.pid ?? -1) ?? uid;
          const state = w.process.exitCode !== null || w.process.signalCode !== null ? `exited (${w.process.exitCode ?? w.process.signalCode})` : 'running';
          const file = logFiles.get(uid);
          const tail = file && existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-logLines) : [];
          return [`pod ${name}: worker ${state}, ${restarts.get(uid) ?? 0} restarts`, ...tail.map((l) => `  | ${l}`)].join('\n');
        })
        .join('\n');
    },
    async stop() {
      stopped = true;
      await loop;
      await Promise.all([...workers.values()].map(kill));
      workers.clear();
    },
  };
}
