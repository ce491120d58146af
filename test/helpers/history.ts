// Reading a sweep's Temporal history: which activities ran across continue-as-new runs and how
// often they were retried, and (for the benchmarks) when one run's activities were running.
import { type Client } from '@temporalio/client';
import { createRequire } from 'node:module';
import proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';

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

const seconds = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) + (t?.nanos ?? 0) / 1e9;

/** Per activity type: how many ran, and the span of time in which at least one was running. */
export async function activityTimeline(handle: { fetchHistory(): Promise<proto.temporal.api.history.v1.IHistory> }) {
  const history = await handle.fetchHistory();
  const type = new Map<number, string>();
  const startedAt = new Map<number, number>();
  const intervals: Record<string, Array<[number, number]>> = {};
  let first = Infinity;
  let last = 0;
  for (const e of history.events ?? []) {
    const at = seconds(e.eventTime);
    first = Math.min(first, at);
    last = Math.max(last, at);
    const id = Number(e.eventId);
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) type.set(id, e.activityTaskScheduledEventAttributes?.activityType?.name ?? '?');
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) startedAt.set(Number(e.activityTaskStartedEventAttributes?.scheduledEventId), at);
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) {
      const scheduled = Number(e.activityTaskCompletedEventAttributes?.scheduledEventId);
      (intervals[type.get(scheduled) ?? '?'] ??= []).push([startedAt.get(scheduled) ?? at, at]);
    }
  }
  const out: Record<string, number> = { historySeconds: last - first };
  for (const [name, spans] of Object.entries(intervals)) {
    spans.sort((a, b) => a[0] - b[0]);
    let covered = 0;
    let end = -Infinity;
    for (const [s, e] of spans) {
      if (e > end) covered += e - Math.max(s, end);
      end = Math.max(end, e);
    }
    out[`${name} activities`] = spans.length;
    // from the history's first event: what the sweep did before its first one and after its last
    out[`${name} first started at (s)`] = spans[0]![0] - first;
    out[`${name} last ended at (s)`] = Math.max(...spans.map(([, e]) => e)) - first;
    out[`${name} running (s)`] = covered;
    out[`${name} summed (s)`] = spans.reduce((sum, [s, e]) => sum + e - s, 0);
  }
  return out;
}

/**
 * A history in the JSON form the Temporal CLI writes (`temporal workflow show --output json`), as
 * the History message replay takes. The SDK's own historyFromJSON cannot read it here: npm gives
 * @temporalio/common and @temporalio/proto separate copies of protobufjs, and protobufjs's JSON
 * codec refuses message types built by the other copy. The codec of the copy that built the
 * types reads it.
 */
export function historyFromCliJson(json: unknown): proto.temporal.api.history.v1.IHistory {
  const codec = createRequire(createRequire(import.meta.url).resolve('@temporalio/proto'))('protobufjs/ext/protojson') as {
    fromJson: (type: unknown, json: unknown, options: { ignoreUnknownFields: boolean }) => proto.temporal.api.history.v1.IHistory | null;
  };
  const root = patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown };
  const history = codec.fromJson(root.lookupType('temporal.api.history.v1.History'), json, { ignoreUnknownFields: true });
  if (history === null) throw new TypeError('not a Temporal history');
  return history;
}
