// Is PostgreSQL answering, is Temporal answering: asked before a command acts (so nothing is started
// that cannot be recorded) and, while the CLI follows a sweep, every few seconds (so a lost service
// is reported at once instead of a silent freeze). Each probe has its own short deadline.
import { Connection } from '@temporalio/client';
import pg from 'pg';

/** A service the command needs does not answer; the message says which, where, and what to do. */
export class HealthError extends Error {
  override name = 'HealthError';
}

const PROBE_MS = 3_000;

function reason(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length) return reason(err.errors[0]);
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!.trim() || 'no answer';
}

export function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** host:port of a database URL, without credentials, for messages. */
export function databaseWhere(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return 'the configured database';
  }
}

/** Resolves with null when PostgreSQL answers a query, else with why not. */
export async function probeDatabase(url: string, ms = PROBE_MS): Promise<string | null> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: ms, query_timeout: ms });
  // a server that dies mid-probe emits 'error' on the client; the awaited call reports it
  client.on('error', () => undefined);
  try {
    await withDeadline(
      (async () => {
        await client.connect();
        await client.query('SELECT 1');
      })(),
      ms,
    );
    return null;
  } catch (err) {
    return reason(err);
  } finally {
    void client.end().catch(() => undefined);
  }
}

/** Resolves with null when the Temporal frontend answers, else with why not. */
export async function probeTemporal(connection: Connection, ms = PROBE_MS): Promise<string | null> {
  try {
    await withDeadline(
      connection.withDeadline(Date.now() + ms, () => connection.workflowService.getSystemInfo({})),
      ms + 500,
    );
    return null;
  } catch (err) {
    return reason(err);
  }
}

/** Connects to Temporal, failing within seconds (the SDK's own default waits longer). */
export async function connectTemporal(address: string, ms = 5_000): Promise<Connection> {
  try {
    return await withDeadline(Connection.connect({ address, connectTimeout: ms }), ms + 1_000);
  } catch (err) {
    throw new HealthError(`Temporal at ${address} does not answer (${reason(err)})`);
  }
}
