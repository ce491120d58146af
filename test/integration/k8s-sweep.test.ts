// End to end through the kubernetes pool provider: a real Temporal dev server and PostgreSQL, the
// orchestrator as its own process (configured by its environment, as in k8s/base), a real
// control plane with KWOK GPU nodes, and a local Python worker for every Running pod of the pool
// (test/helpers/pod-workers.ts). Covers model-major placement (model loads vs shards), a pod
// evicted mid-shard, cancellation, the orchestrator killed mid-sweep, and the reconcile schedule.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import proto from '@temporalio/proto';
import { KubernetesPool, LABELS, sweepLabel } from '../../activities/pool-kubernetes';
import { loadSweepReport } from '../../workers/lib/report';
import { POOL_DEFAULTS, poolGroups } from '../../workflows/pool';
import { POOL_RECONCILE_SCHEDULE } from '../../workflows/pool-reconcile';
import { repoRoot } from '../../workers/lib/paths';
import { startSweep } from '../../workers/lib/sweeps';
import { controlPlaneUnavailable, poolLeftovers, startControlPlane, waitFor, type ControlPlane } from '../helpers/control-plane';
import { tableCounts, testStack } from '../helpers/fixtures';
import { activityStats } from '../helpers/history';
import { startPodWorkers, type PodWorkers } from '../helpers/pod-workers';

const skip = controlPlaneUnavailable() ?? undefined;
const NS = 'twice';

const spec = (name: string, numExamples: number, maxNewTokens = 2) => `
name: ${name}
models: [zoo-based-tiny, zoo-attn-tiny]
tasks:
  - name: synthetic_doc_qa
    params: { numExamples: ${numExamples}, seed: 5 }
strategies: [default, jrt_prompt]
generation: { maxNewTokens: ${maxNewTokens}, batchSize: 2 }
execution:
  shardSize: 4
  window: 4
  device: cpu
  heartbeatTimeoutSeconds: 10
  pool: { maxPods: 3, shardsPerPod: 8, readyTimeoutSeconds: 120 }
`;

describe('sweeps on a kubernetes GPU pool (KWOK + local workers per pod)', { skip, timeout: 900_000 }, () => {
  let cp: ControlPlane;
  let stack: Awaited<ReturnType<typeof testStack>>;
  let pods: PodWorkers;
  let core: k8s.CoreV1Api;
  let dir: string;
  let orchestrator: ChildProcess | null = null;

  const startOrchestrator = async () => {
    const out = createWriteStream(join(dir, 'orchestrator.log'), { flags: 'a' });
    const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'workers', 'orchestrator.ts')], {
      cwd: repoRoot,
      env: {
        ...process.env,
        DATABASE_URL: stack.databaseUrl,
        TEMPORAL_ADDRESS: stack.temporalAddress,
        TEMPORAL_NAMESPACE: stack.namespace,
        KUBECONFIG: cp.kubeconfigPath,
        TWICE_POOL_PROVIDER: 'kubernetes',
        TWICE_POOL_NAMESPACE: NS,
        TWICE_POOL_IMAGE: 'twice-inference:test',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.pipe(out);
    await new Promise<void>((resolve, reject) => {
      let buffer = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out.write(chunk);
        buffer += chunk.toString();
        if (buffer.includes('orchestrator worker ready')) resolve();
      });
      child.once('exit', (code, signal) => reject(new Error(`orchestrator exited early (${code ?? signal}); see ${dir}/orchestrator.log`)));
    });
    orchestrator = child;
  };
  const killOrchestrator = async () => {
    const child = orchestrator;
    orchestrator = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  const leftovers = (sweepId: string) => poolLeftovers(cp.kubeConfig, NS, sweepId);
  // A failure says what the pool's workers and the orchestrator were doing last: their logs are
  // deleted with the suite's directory, and a CI log is all there is to read afterwards.
  let watched: Awaited<ReturnType<typeof startSweep>>['handle'] | null = null;
  const start = async (file: string) => {
    const started = await startSweep(stack.client, file);
    watched = started.handle;
    return started;
  };
  const pendingActivities = async (): Promise<string[]> => {
    if (!watched) return [];
    const { raw } = await watched.describe();
    return (raw.pendingActivities ?? []).map((a) => {
      const state = proto.temporal.api.enums.v1.PendingActivityState[a.state ?? 0];
      const failure = a.lastFailure?.message ? `, last failure: ${a.lastFailure.message.slice(0, 200)}` : '';
      return `${a.activityType?.name} ${state} attempt ${a.attempt} on ${a.lastWorkerIdentity || '-'}${failure}`;
    });
  };
  const explained = (test: () => Promise<void>) => async () => {
    try {
      watched = null;
      await test();
    } catch (err) {
      const log = join(dir, 'orchestrator.log');
      const orchestratorTail = existsSync(log)
        ? readFileSync(log, 'utf8')
            .split('\n')
            .filter((l) => /^[^\s}]/.test(l))
            .slice(-20)
        : [];
      const activities = await pendingActivities().catch((e: unknown) => [`(could not describe the sweep: ${String(e)})`]);
      if (err instanceof Error) {
        err.stack = [
          err.stack,
          '-- pod workers',
          pods.describe(),
          "-- the sweep's pending activities",
          ...activities,
          '-- orchestrator log (last lines)',
          ...orchestratorTail,
        ].join('\n');
      }
      throw err;
    }
  };
  const specFile = (name: string, examples: number, maxNewTokens?: number) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, spec(name, examples, maxNewTokens));
    return file;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'twice-k8s-sweep-'));
    mkdirSync(join(dir, 'workers'));
    cp = await startControlPlane();
    core = cp.kubeConfig.makeApiClient(k8s.CoreV1Api);
    await cp.addGpuNodes(2, 8);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    stack = await testStack({ pythonWorkers: 0, orchestrator: false });
    pods = startPodWorkers({ kubeConfig: cp.kubeConfig, namespace: NS, temporalAddress: stack.temporalAddress, logDir: join(dir, 'workers') });
    await startOrchestrator();
  });

  after(async () => {
    await killOrchestrator();
    await pods?.stop();
    await stack?.stop();
    await cp?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(
    'runs model-major on the pool, survives an evicted pod mid-shard, and leaves nothing behind',
    explained(async () => {
      // longer generations than the other sweeps here: a shard runs long enough to be evicted mid-way
      const { handle, sweepId } = await start(specFile('k8s-e2e', 16, 24));
      // 2 models x 2 strategies x 4 shards; 8 pending shards per model at 8 per pod: one pod each
      await waitFor('one Running pod per model group', async () => pods.running() === 2);
      // evict the pod of the first model group while its worker runs a shard (Temporal says which
      // worker holds a started activity): the shard is retried on the replacement pod
      const g0Pods = new Set(
        (await core.listNamespacedPod({ namespace: NS, labelSelector: `${LABELS.sweep}=${sweepLabel(sweepId)},${LABELS.group}=g0` })).items.map(
          (p) => p.metadata!.name!,
        ),
      );
      const victim = await waitFor(
        'a shard running on the pod of the first model group',
        async () => {
          const { raw } = await handle.describe();
          for (const a of raw.pendingActivities ?? []) {
            if (a.state !== proto.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED) continue;
            const pod = pods.podOfPid(Number((a.lastWorkerIdentity ?? '').split('@')[0]));
            if (pod && g0Pods.has(pod)) return pod;
          }
          return undefined;
        },
        180_000,
      );
      await core.createNamespacedPodEviction({ name: victim, namespace: NS, body: { metadata: { name: victim, namespace: NS } } });

      const result = await handle.result();
      assert.equal(result.status, 'completed', JSON.stringify(result.failures));
      const counts = await tableCounts(stack.db);
      assert.equal(counts.shards, 16, 'every shard recorded exactly once');
      assert.equal(counts.examples, 64);
      for (const c of await stack.db.cell.findMany({ include: { examples: { select: { exampleId: true } } } })) {
        assert.deepEqual(
          c.examples.map((e) => e.exampleId).sort((a, b) => a - b),
          [...Array(16).keys()],
        );
      }
      const stats = await activityStats(stack.client, handle.workflowId);
      assert.ok(stats.maxAttempt >= 2, `the evicted pod's shard was retried (max attempt ${stats.maxAttempt})`);
      assert.ok(pods.started.length >= 3, `a replacement pod took over: ${pods.started.join(', ')}`);

      const report = await loadSweepReport(stack.db, sweepId);
      const e = report.execution;
      console.log(`# k8s e2e: ${e.shards} shards on ${e.workers} pod workers, ${e.modelLoads} model loads (${e.workerModelPairs} pod-model pairs)`);
      assert.equal(e.shards, 16);
      assert.equal(e.modelLoads, e.workerModelPairs, 'one load per (pod, model), not per shard');
      assert.ok(e.modelLoads <= 3, `at most the two first pods and one replacement loaded a model, got ${e.modelLoads}`);
      assert.deepEqual(await waitFor('the pool to be gone', async () => ((await leftovers(sweepId)).length === 0 ? [] : false), 60_000), []);
    }),
  );

  it(
    'deletes every pool object when the sweep is cancelled',
    explained(async () => {
      const { handle, sweepId } = await start(specFile('k8s-cancel', 200));
      await waitFor('pool pods Running', async () => pods.running() >= 1);
      assert.ok((await leftovers(sweepId)).length > 0);
      await handle.cancel();
      await assert.rejects(handle.result());
      assert.deepEqual(await waitFor('the pool to be gone', async () => ((await leftovers(sweepId)).length === 0 ? [] : false), 60_000), []);
      await waitFor('the pod workers to be stopped', async () => pods.running() === 0);
    }),
  );

  it(
    'finishes the sweep and removes its pool after the orchestrator is killed mid-sweep and restarted',
    explained(async () => {
      const { handle, sweepId } = await start(specFile('k8s-restart', 24));
      await waitFor('pool pods Running', async () => pods.running() >= 1);
      const recordedBefore = await stack.db.shardRecord.count();
      await waitFor('a shard of this sweep', async () => (await stack.db.shardRecord.count()) > recordedBefore);
      await killOrchestrator();
      await startOrchestrator();
      const result = await handle.result();
      assert.equal(result.status, 'completed', JSON.stringify(result.failures));
      assert.equal((await loadSweepReport(stack.db, sweepId)).execution.shards, 24);
      assert.deepEqual(await waitFor('the pool to be gone', async () => ((await leftovers(sweepId)).length === 0 ? [] : false), 60_000), []);
    }),
  );

  it(
    'the reconcile schedule removes the pool of a sweep that is not running',
    explained(async () => {
      const ghost = 'ghost-20261128-000000-0000';
      const pool = new KubernetesPool(cp.kubeConfig, {
        namespace: NS,
        image: 'twice-inference:test',
        temporalAddress: stack.temporalAddress,
        temporalNamespace: 'default',
      });
      const groups = poolGroups(ghost, ['zoo-based-tiny'], POOL_DEFAULTS);
      await pool.apply({ sweepId: ghost, groups, replicas: { g0: 1 }, settings: POOL_DEFAULTS }, `sweep/${ghost}`);
      assert.ok((await leftovers(ghost)).length > 0);
      await stack.client.schedule.getHandle(POOL_RECONCILE_SCHEDULE).trigger();
      assert.deepEqual(await waitFor('the reconcile to remove the pool', async () => ((await leftovers(ghost)).length === 0 ? [] : false), 60_000), []);
    }),
  );
});
