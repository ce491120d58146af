// The pool activities the sweep workflow drives: bring up the GPU workers a sweep needs, resize
// them as models finish, remove them when the sweep ends, and reconcile away the pools of sweeps
// that are no longer running. One interface, two providers: `local` (the worker processes the
// embedded stack runs on this machine) and `kubernetes` (activities/pool-kubernetes.ts).
import { ApplicationFailure, Context, log } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/common';
import { poolProgressLine, type PoolPlan, type PoolStatus } from '../workflows/pool';

export interface PoolObjectRef {
  sweepId: string;
  workflowId: string;
}

export interface PoolProvider {
  readonly name: 'local' | 'kubernetes';
  /**
   * Creates or resizes the sweep's pool to the plan, shrinking it to fit a quota. Throws
   * PoolQuotaExceeded (non-retryable) when not even one pod fits, with nothing of the sweep left.
   */
  apply(plan: PoolPlan, workflowId: string): Promise<PoolStatus>;
  status(sweepId: string): Promise<PoolStatus>;
  /** removes every object of the sweep and returns once none is left */
  remove(sweepId: string): Promise<number>;
  /** the sweeps that have pool objects */
  list(): Promise<PoolObjectRef[]>;
}

/**
 * The embedded stack's Python workers: a fixed set of processes on this machine that poll the
 * shared GPU queue and outlive sweeps, so there is nothing to create, resize or delete per sweep.
 */
export class LocalPool implements PoolProvider {
  readonly name = 'local' as const;
  /** `workers` counts the live ones; null when they run outside this process's knowledge */
  constructor(private readonly workers: (() => number) | null) {}
  async apply(): Promise<PoolStatus> {
    return this.status();
  }
  async status(): Promise<PoolStatus> {
    const n = this.workers?.();
    const counts: Record<string, number> = n === undefined ? {} : { local: n };
    return { provider: 'local', desired: counts, ready: counts, shrunkBy: null };
  }
  async remove(): Promise<number> {
    return 0;
  }
  async list(): Promise<PoolObjectRef[]> {
    return [];
  }
}

export interface PoolWaitInput {
  sweepId: string;
  timeoutSeconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createPoolActivities(provider: PoolProvider) {
  return {
    async poolApply(input: { plan: PoolPlan; workflowId: string }): Promise<PoolStatus> {
      const status = await provider.apply(input.plan, input.workflowId);
      log.info(poolProgressLine(status), { sweepId: input.plan.sweepId });
      return status;
    },

    /**
     * Waits until every group that has work has at least one ready worker (work can start),
     * heartbeating a progress line. On timeout it fails with what the pods are waiting for.
     */
    async poolWaitReady(input: PoolWaitInput): Promise<PoolStatus> {
      const deadline = Date.now() + input.timeoutSeconds * 1000;
      let line = '';
      for (;;) {
        const status = await provider.status(input.sweepId);
        const next = poolProgressLine(status);
        if (next !== line) log.info(next, { sweepId: input.sweepId });
        line = next;
        Context.current().heartbeat(line);
        const waiting = Object.keys(status.desired).filter((g) => status.desired[g]! > 0 && (status.ready[g] ?? 0) === 0);
        if (waiting.length === 0) return status;
        if (Date.now() > deadline) {
          throw ApplicationFailure.nonRetryable(
            `the GPU pool of sweep ${input.sweepId} was not ready after ${input.timeoutSeconds} s: ${line}`,
            'PoolNotReady',
          );
        }
        await sleep(500);
      }
    },

    async poolRemove(input: { sweepId: string }): Promise<number> {
      const removed = await provider.remove(input.sweepId);
      if (removed) log.info(`pool of sweep ${input.sweepId} removed (${removed} objects)`);
      return removed;
    },

    /** Removes the pools of sweeps whose workflow is not running (finished, failed, terminated, gone). */
    async poolReconcile(): Promise<string[]> {
      const client = Context.current().client;
      const removed: string[] = [];
      for (const ref of await provider.list()) {
        let running = false;
        try {
          const d = await client.workflow.getHandle(ref.workflowId).describe();
          running = d.status.name === 'RUNNING';
        } catch (err) {
          // only a workflow Temporal no longer knows counts as gone; other errors retry the activity
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
        if (!running) {
          await provider.remove(ref.sweepId);
          removed.push(ref.sweepId);
        }
      }
      if (removed.length) log.info(`pool reconcile removed the pools of ${removed.join(', ')}`);
      return removed;
    },
  };
}
export type PoolActivities = ReturnType<typeof createPoolActivities>;
