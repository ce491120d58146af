// GPU worker pools, the part the sweep workflow decides: which models share a pod group, how many
// pods each group gets for the work still pending, and the task queue each group's workers poll.
// Pure and deterministic; the providers (activities/pool-*.ts) turn a plan into processes or pods.
//
// Placement is model-major through task queues: with a pool provider that places work
// (kubernetes), every group of models gets its own queue and its own pods, so a pod loads each of
// its models once and streams all their cells and shards; model loads per sweep then equal the
// (pod, model) pairs, not the shards. The local provider keeps today's single shared GPU queue.
import { z } from 'zod';
import { GPU_QUEUE } from './contract';

export const PoolSettings = z
  .object({
    // at most this many GPU pods at once for the sweep, across all its models
    maxPods: z.number().int().min(1).max(512).default(4),
    // nvidia.com/gpu per pod
    gpusPerPod: z.number().int().min(1).max(16).default(1),
    // the node label nvidia.com/gpu.product the pods must land on (GPU feature discovery sets it)
    gpuType: z.string().min(1).max(63).optional(),
    // extra node labels the pods must match
    nodeSelector: z.record(z.string().min(1).max(253), z.string().max(63)).default({}),
    // consecutive models (model-major order) served by the same pods: small models can share a
    // GPU, each still loaded once per pod (the worker keeps this many models resident)
    modelsPerPod: z.number().int().min(1).max(16).default(1),
    // a group gets one pod per this many pending shards, up to maxPods
    shardsPerPod: z.number().int().min(1).max(10_000).default(8),
    // how long the first pods may take to be ready (image pull, node scale-up) before the sweep fails
    readyTimeoutSeconds: z.number().int().min(10).max(86_400).default(900),
  })
  .strict();
export type PoolSettings = z.infer<typeof PoolSettings>;

export const POOL_DEFAULTS: PoolSettings = PoolSettings.parse({});

export interface PoolGroup {
  /** stable within a sweep: g0, g1, ... in model-major order */
  id: string;
  models: string[];
  queue: string;
}

export interface PoolPlan {
  sweepId: string;
  groups: PoolGroup[];
  /** pods per group id */
  replicas: Record<string, number>;
  settings: PoolSettings;
}

export interface PoolStatus {
  provider: 'local' | 'kubernetes';
  /** pods (or worker processes) wanted and ready, per group id */
  desired: Record<string, number>;
  ready: Record<string, number>;
  /** set when a quota made the pool smaller than asked */
  shrunkBy: string | null;
  /** why pods are missing, as the cluster says it (a ReplicaSet's failure to create pods) */
  problem?: string | null;
}

/** A queue name unique to the sweep and group; Temporal allows any string up to 1000 bytes. */
export function groupQueue(sweepId: string, groupId: string): string {
  return `${GPU_QUEUE}.${sweepId}.${groupId}`;
}

/** Groups models in the order given (model-major), `modelsPerPod` at a time. */
export function poolGroups(sweepId: string, models: string[], settings: PoolSettings): PoolGroup[] {
  const groups: PoolGroup[] = [];
  for (let i = 0; i < models.length; i += settings.modelsPerPod) {
    const id = `g${groups.length}`;
    groups.push({ id, models: models.slice(i, i + settings.modelsPerPod), queue: groupQueue(sweepId, id) });
  }
  return groups;
}

/**
 * Pods per group for the shards still pending, model-major: earlier groups are filled first
 * (one pod per `shardsPerPod` shards), later ones get what is left of `maxPods` and grow as the
 * earlier ones finish. A group with nothing pending gets 0.
 */
export function allocatePods(groups: PoolGroup[], pendingByModel: Record<string, number>, settings: PoolSettings): Record<string, number> {
  let left = settings.maxPods;
  const out: Record<string, number> = {};
  for (const g of groups) {
    const pending = g.models.reduce((n, m) => n + (pendingByModel[m] ?? 0), 0);
    const want = pending === 0 ? 0 : Math.ceil(pending / settings.shardsPerPod);
    out[g.id] = Math.min(want, left);
    left -= out[g.id]!;
  }
  return out;
}

/** One line for logs and the CLI: "pool: 3/4 pods ready (g0 2/2, g1 1/2)". */
export function poolProgressLine(status: PoolStatus): string {
  const ids = Object.keys(status.desired);
  const sum = (r: Record<string, number>) => ids.reduce((n, id) => n + (r[id] ?? 0), 0);
  const parts = ids.filter((id) => status.desired[id]! > 0).map((id) => `${id} ${status.ready[id] ?? 0}/${status.desired[id]}`);
  const shrunk = status.shrunkBy ? `; shrunk to fit ${status.shrunkBy}` : '';
  const problem = status.problem ? `; ${status.problem}` : '';
  return `pool (${status.provider}): ${sum(status.ready)}/${sum(status.desired)} pods ready${parts.length ? ` (${parts.join(', ')})` : ''}${shrunk}${problem}`;
}
