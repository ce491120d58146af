// Reading a sweep's Temporal history across continue-as-new runs: which activities ran, and how
// often they were retried.
import { type Client } from '@temporalio/client';
import proto from '@temporalio/proto';

const EventType = proto.temporal.api.enums.v1.EventType;

export async function activityStats(client: Client, workflowId: string) {
  const scheduled: Record<string, number> = {};
  let maxAttempt = 0;
  let runs = 0;
  let runId: string | undefined;
  // walk from the latest run back through the chain of continued-as-new runs
  const seen = new Set<string>();
  for (const execution of await listRuns(client, workflowId)) {
    if (seen.has(execution)) continue;
    seen.add(execution);
    runs += 1;
    runId = execution;
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    for (const e of history.events ?? []) {
      if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
        const name = e.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
        scheduled[name] = (scheduled[name] ?? 0) + 1;
      }
      if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
        maxAttempt = Math.max(maxAttempt, e.activityTaskStartedEventAttributes?.attempt ?? 0);
      }
    }
  }
  return { scheduled, maxAttempt, runs };
}

async function listRuns(client: Client, workflowId: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) ids.push(w.runId);
  return ids;
}
