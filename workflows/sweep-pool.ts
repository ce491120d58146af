// The sweep's GPU pool, seen from the workflow: bring it up sized to the pending shards, route
// each shard to its model group's queue, shrink it as models finish, remove it at the end
// (completed, failed or cancelled). With the local provider every shard goes to the shared GPU
// queue and nothing is created or removed.
import { CancellationScope, proxyActivities } from '@temporalio/workflow';
import type { PoolActivities } from '../activities/pool';
import { GPU_QUEUE } from './contract';
import { allocatePods, POOL_DEFAULTS, poolGroups, poolProgressLine, type PoolGroup, type PoolStatus } from './pool';
import type { SweepSpec } from './sweep-spec';

const pool = proxyActivities<PoolActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10, nonRetryableErrorTypes: ['PoolQuotaExceeded', 'PoolNotReady'] },
});

export class SweepPool {
  private readonly settings;
  private readonly groups: PoolGroup[];
  private readonly groupOf = new Map<string, PoolGroup>();
  private readonly remaining: Record<string, number> = {};
  private status: PoolStatus | null = null;
  private resizing: Promise<void> = Promise.resolve();
  /** the latest progress line, for the sweep's progress query */
  line: string | null = null;

  constructor(
    private readonly sweepId: string,
    private readonly workflowId: string,
    spec: SweepSpec,
    models: string[],
  ) {
    this.settings = spec.execution.pool ?? POOL_DEFAULTS;
    this.groups = poolGroups(sweepId, models, this.settings);
    for (const g of this.groups) for (const m of g.models) this.groupOf.set(m, g);
  }

  get placesWork(): boolean {
    return this.status?.provider === 'kubernetes';
  }

  /** Creates (or, after continue-as-new, resizes) the pool and waits until every busy group has a worker. */
  async start(pendingByModel: Record<string, number>): Promise<void> {
    Object.assign(this.remaining, pendingByModel);
    this.status = await pool.poolApply({ plan: this.plan(), workflowId: this.workflowId });
    this.line = poolProgressLine(this.status);
    if (!this.placesWork) return;
    const ready = await proxyActivities<PoolActivities>({
      startToCloseTimeout: `${this.settings.readyTimeoutSeconds + 120} seconds`,
      heartbeatTimeout: '60 seconds',
      retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['PoolNotReady'] },
    }).poolWaitReady({ sweepId: this.sweepId, timeoutSeconds: this.settings.readyTimeoutSeconds });
    this.line = poolProgressLine({ ...ready, shrunkBy: this.status.shrunkBy });
  }

  queueFor(model: string): string {
    return this.placesWork ? this.groupOf.get(model)!.queue : GPU_QUEUE;
  }

  /** A shard of `model` finished (recorded, failed or skipped); a group with no work left is scaled to zero. */
  shardSettled(model: string): void {
    this.remaining[model] = Math.max(0, (this.remaining[model] ?? 0) - 1);
    if (!this.placesWork) return;
    const group = this.groupOf.get(model)!;
    if (group.models.some((m) => (this.remaining[m] ?? 0) > 0)) return;
    // one resize at a time, in order; the last one reflects everything settled so far
    this.resizing = this.resizing.then(async () => {
      this.status = await pool.poolApply({ plan: this.plan(), workflowId: this.workflowId });
      this.line = poolProgressLine(this.status);
    });
  }

  /** Removes every pool object of the sweep, even when the sweep was cancelled. */
  async remove(): Promise<void> {
    if (!this.placesWork) return;
    await CancellationScope.nonCancellable(async () => {
      await this.resizing.catch(() => undefined);
      await pool.poolRemove({ sweepId: this.sweepId });
    });
    this.line = `pool (kubernetes): removed`;
  }

  /** Waits for pending resizes; their errors (a quota that no longer fits one pod) fail the sweep. */
  async settle(): Promise<void> {
    await this.resizing;
  }

  private plan() {
    return { sweepId: this.sweepId, groups: this.groups, replicas: allocatePods(this.groups, this.remaining, this.settings), settings: this.settings };
  }
}
