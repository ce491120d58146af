// nightlyWorkflow: what a Temporal Schedule starts each night. The schedule's action carries the
// spec exactly as it was when the schedule was created (text, parsed form and digest), so editing
// the YAML later changes nothing about what runs. The sweep runs as a child workflow under its
// usual id (sweep/<sweep id>), so `twice status`, `cancel` and `report` work on it as on any other;
// then one activity compares the night with the previous one and the pinned baseline.
import { ParentClosePolicy, executeChild, proxyActivities, uuid4, workflowInfo } from '@temporalio/workflow';
import type * as nightlyActivities from '../activities/nightly';
import { ORCHESTRATOR_QUEUE } from './contract';
import { type NightlyResult, type NightlyWorkflowInput } from './messages';
import { sweepWorkflow } from './sweep';

const local = proxyActivities<ReturnType<typeof nightlyActivities.createNightlyActivities>>({
  taskQueue: ORCHESTRATOR_QUEUE,
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 5 },
});

/** `<schedule>-<yyyymmdd-hhmmss>-<4 hex>`: the night's sweep id, readable and sortable by time. */
export function nightlySweepId(scheduleId: string, now: Date, salt: string): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${scheduleId}-${stamp}-${salt.slice(0, 4)}`;
}

export async function nightlyWorkflow(input: NightlyWorkflowInput): Promise<NightlyResult> {
  // Date and uuid4 are replay-safe inside a workflow
  const sweepId = nightlySweepId(input.scheduleId, new Date(), uuid4().replace(/-/g, ''));
  const sweep = await executeChild(sweepWorkflow, {
    workflowId: `sweep/${sweepId}`,
    taskQueue: ORCHESTRATOR_QUEUE,
    // cancelling or terminating the night cancels its sweep, which then records itself cancelled
    parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
    args: [
      {
        sweepId,
        specFile: input.specFile,
        specYaml: input.specYaml,
        spec: input.spec,
        gitSha: input.gitSha,
      },
    ],
  });
  const summary = await local.summarizeNight({
    scheduleId: input.scheduleId,
    sweepId,
    nightlyWorkflowId: workflowInfo().workflowId,
    settings: input.settings,
  });
  return { sweepId, status: sweep.status, summary };
}
