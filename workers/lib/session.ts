// How a CLI invocation reaches the platform: real deployments when DATABASE_URL and
// TEMPORAL_ADDRESS are set, otherwise the embedded stack, which runs in a background daemon
// (workers/stack-daemon.ts) so that a sweep keeps going after the CLI detaches. The daemon's
// address book is <state dir>/stack.json.
import { Client } from '@temporalio/client';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { createDb, type Db } from './db-client';
import { loadEnv } from './env';
import { alive, commandLine, reapStack } from './processes';
import { postgresDataDir } from './paths';
import { HealthError, connectTemporal, databaseWhere, probeDatabase, probeTemporal } from './health';

export const StackInfo = z
  .object({
    pid: z.number().int(),
    databaseUrl: z.string(),
    temporalAddress: z.string(),
    namespace: z.string(),
    uiUrl: z.string().nullable(),
    // the web dashboard; absent in the address book of a daemon from before it existed
    webUrl: z.string().nullable().default(null),
    // the process that stops the servers if the daemon dies without doing so
    watchdogPid: z.number().int().nullable().default(null),
    startedAt: z.string(),
  })
  .strict();
export type StackInfo = z.infer<typeof StackInfo>;

export interface Session {
  client: Client;
  db: Db;
  namespace: string;
  /** this invocation started the embedded stack (and may stop it when done) */
  startedStack: boolean;
  stackInfo: StackInfo | null;
  /** throws HealthError naming the service that stopped answering and what to do */
  checkHealth(doing: string): Promise<void>;
  close(): Promise<void>;
}

export const stackInfoPath = (stateDir: string) => join(stateDir, 'stack.json');
// the daemon's pid, written as soon as it is spawned: found again even if it dies while starting
const daemonPidPath = (stateDir: string) => join(stateDir, 'stack.pid');

/** A live stack daemon, not just any process that now has its old pid. */
function daemonAlive(pid: number): boolean {
  return alive(pid) && (commandLine(pid) ?? []).some((a) => a.endsWith('stack-daemon.ts'));
}

/**
 * Clears what a dead daemon left: its servers (only the members of its own process group, and
 * only PostgreSQL serving this stack's data directory), a stale PostgreSQL lock file, stale state
 * files. Returns the pids it stopped. Does nothing while a daemon is alive.
 */
export async function recoverStaleStack(stateDir: string, log: (m: string) => void): Promise<number[]> {
  const pidFile = daemonPidPath(stateDir);
  const recorded = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : NaN;
  const daemonPid = Number.isInteger(recorded) && recorded > 1 ? recorded : null;
  if (daemonPid !== null && daemonAlive(daemonPid)) return [];
  const stopped = await reapStack({ daemonPid, dataDir: postgresDataDir(stateDir), log });
  rmSync(stackInfoPath(stateDir), { force: true });
  rmSync(pidFile, { force: true });
  return stopped;
}

export function readStackInfo(stateDir: string): StackInfo | null {
  const file = stackInfoPath(stateDir);
  if (!existsSync(file)) return null;
  const info = StackInfo.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!info.success || !daemonAlive(info.data.pid)) {
    rmSync(file, { force: true });
    return null;
  }
  return info.data;
}

async function startDaemon(stateDir: string, log: (m: string) => void): Promise<StackInfo> {
  const logFile = join(stateDir, 'logs', 'stack.log');
  mkdirSync(join(stateDir, 'logs'), { recursive: true });
  const stopped = await recoverStaleStack(stateDir, log);
  if (stopped.length) log(`stopped ${stopped.length} process(es) an earlier stack left running`);
  log('starting the embedded stack (PostgreSQL, Temporal dev server, workers)...');
  const fd = openSync(logFile, 'a');
  const daemon = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../stack-daemon.ts', import.meta.url))], {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, TWICE_STATE_DIR: stateDir },
  });
  closeSync(fd);
  daemon.unref();
  writeFileSync(daemonPidPath(stateDir), `${daemon.pid}\n`);
  const deadline = Date.now() + 300_000;
  while (Date.now() < deadline) {
    const info = readStackInfo(stateDir);
    if (info && info.pid === daemon.pid) return info;
    if (daemon.exitCode !== null || !daemonAlive(daemon.pid!)) {
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n') : '';
      throw new Error(`the embedded stack failed to start; last lines of ${logFile}:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the embedded stack did not come up within 5 minutes; see ${logFile}`);
}

export async function stopDaemon(info: StackInfo): Promise<void> {
  // the daemon's orderly shutdown (see stack-daemon.ts for why not SIGTERM)
  process.kill(info.pid, 'SIGUSR2');
  const deadline = Date.now() + 60_000;
  while (alive(info.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  if (alive(info.pid)) process.kill(info.pid, 'SIGKILL');
}

export async function openSession(opts: { start: boolean; log?: (m: string) => void }): Promise<Session> {
  const env = loadEnv();
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  let info: StackInfo | null = null;
  let startedStack = false;
  let databaseUrl = env.databaseUrl;
  let address = env.temporalAddress;
  let namespace = env.namespace;
  if (!env.external) {
    info = readStackInfo(env.stateDir);
    if (!info) {
      if (!opts.start) {
        throw new Error('no embedded stack is running (start one with `twice stack up` or `twice run`)');
      }
      info = await startDaemon(env.stateDir, log);
      startedStack = true;
    }
    ({ databaseUrl, temporalAddress: address, namespace } = info);
  }
  // what to do when a service does not answer: the embedded stack restarts whole, and its sweeps
  // resume where they stopped; an external one is the operator's
  const remedy = env.external
    ? 'check that it runs and that DATABASE_URL and TEMPORAL_ADDRESS point at it'
    : 'restart the embedded stack with `npm run twice -- stack down` then `npm run twice -- stack up` (sweeps resume where they stopped)';
  const connection = await connectTemporal(address).catch((err: Error) => {
    throw new HealthError(`${err.message}; ${remedy}`);
  });
  const dbProblem = await probeDatabase(databaseUrl);
  if (dbProblem) {
    await connection.close().catch(() => undefined);
    throw new HealthError(`PostgreSQL at ${databaseWhere(databaseUrl)} does not answer (${dbProblem}); ${remedy}`);
  }
  const db = createDb(databaseUrl);
  return {
    client: new Client({ connection, namespace }),
    db,
    namespace,
    startedStack,
    stackInfo: info,
    async checkHealth(doing: string) {
      const [temporal, database] = await Promise.all([probeTemporal(connection), probeDatabase(databaseUrl)]);
      const lost = [
        ...(temporal ? [`Temporal at ${address} (${temporal})`] : []),
        ...(database ? [`PostgreSQL at ${databaseWhere(databaseUrl)} (${database})`] : []),
      ];
      if (lost.length) throw new HealthError(`lost ${lost.join(' and ')} while ${doing}; ${remedy}`);
    },
    async close() {
      // a dead service must not hold the command open on its way out
      const closing = Promise.all([db.$disconnect(), connection.close()]).catch(() => undefined);
      await Promise.race([closing, new Promise((r) => setTimeout(r, 3_000).unref())]);
    },
  };
}
